#!/usr/bin/env python3
"""`scripts/bench --criterion`: runs every `[[bench]]` target of engine/Cargo.toml (criterion
microbenchmarks in engine/benches/: engine, and pipeline, ingest, load when they exist), then prints
one compact line per benchmark with criterion's median (from its
target/criterion/<id>/new/estimates.json, written by this run) and the mean.

Usage: bench/criterion.py [FILTER ...]   (FILTER is passed on to each bench binary, as with
`cargo bench -- FILTER`)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path


def fmt(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main() -> int:
    repo = Path(__file__).resolve().parent.parent
    target = Path(os.environ.get("CARGO_TARGET_DIR", repo / "target"))
    manifest = tomllib.loads((repo / "engine" / "Cargo.toml").read_text())
    names = [b["name"] for b in manifest.get("bench", [])]
    if not names:
        print("engine/Cargo.toml declares no [[bench]]", file=sys.stderr)
        return 1
    filters = sys.argv[1:]
    started = time.time()
    summary: list[tuple[str, str, float, float]] = []
    failed = []
    for name in names:
        print(f"== cargo bench --bench {name}", flush=True)
        t0 = time.time()
        rc = subprocess.run(
            ["cargo", "bench", "--workspace", "--locked", "--bench", name, "--", *filters], cwd=repo
        ).returncode
        if rc != 0:
            failed.append(name)
            continue
        for est in sorted((target / "criterion").glob("**/new/estimates.json")):
            if est.stat().st_mtime < t0:
                continue  # not written by this bench binary
            meta = est.with_name("benchmark.json")
            bench_id = json.loads(meta.read_text()).get("full_id") if meta.exists() else None
            bench_id = bench_id or str(est.parent.parent.relative_to(target / "criterion"))
            e = json.loads(est.read_text())
            summary.append((name, bench_id, e["median"]["point_estimate"], e["mean"]["point_estimate"]))

    print(f"\ncriterion medians ({len(summary)} benchmarks, {(time.time() - started) / 60:.1f} min):")
    width = max((len(b) for _, b, _, _ in summary), default=10)
    for name, bench_id, med, mean in summary:
        print(f"  {name:<10} {bench_id:<{width}}  median {fmt(med):>10}   mean {fmt(mean):>10}")
    if failed:
        print(f"failed bench targets: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
