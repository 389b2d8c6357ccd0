"""Tripline builds A/B on pipeline.py's storm (its own `Side.round`), alternating, medians: how
each pipeline step in BENCHMARKS.md was measured against the build before it.

    python3 bench/ab_storm.py N ROUNDS BIN_A [BIN_B ...]
    python3 bench/ab_storm.py 100000 3 /tmp/tripline-before target/release/tripline

Each round starts a fresh `tripline run` (fresh SQLite file in a temp dir, removed at the end)."""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sections import pipeline as P  # noqa: E402
from bench.sections.common import Context, WebhookSink  # noqa: E402


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    n, rounds, bins = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    tmp = Path(tempfile.mkdtemp(prefix="ab-storm-"))
    sink = WebhookSink()
    res: dict[str, list[dict]] = {b: [] for b in bins}
    try:
        sides = {
            b: P.Side(
                Context(repo=Path("."), tmp=tmp / str(i), tripline=Path(b), bench=Path(), prometheus="",
                        promtool="", alertmanager="", moto=None, rounds=rounds, quick=False),
                sink,
                "tripline",
            )
            for i, b in enumerate(bins)
        }
        bodies = P.payloads(n)
        for r in range(rounds):
            for b in bins:
                x = sides[b].round(n, bodies)
                x["after"] = x["notified"] - x["posted"]
                x["per"] = (x["active"] - x["idle"]) * 1024 / n
                res[b].append(x)
                print(f"{b} round {r}: {x['rate']:,.0f}/s, posted {x['posted']:.2f} s, notified "
                      f"{x['notified']:.2f} s (+{x['after']:.2f}), peak {x['peak'] / 1024:.0f} MiB, "
                      f"{x['per']:,.0f} B/alert, {x['requests']} requests", flush=True)
    finally:
        sink.close()
        shutil.rmtree(tmp, ignore_errors=True)
    for b in bins:
        m = lambda k: statistics.median([x[k] for x in res[b]])  # noqa: E731
        print(f"median {b}: {m('rate'):,.0f}/s, +{m('after'):.2f} s after the last POST, "
              f"peak {m('peak') / 1024:.0f} MiB, {m('per'):,.0f} B/alert")


if __name__ == "__main__":
    main()
