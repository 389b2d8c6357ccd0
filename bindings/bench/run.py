#!/usr/bin/env python3
"""The bindings' overhead: 10,000 series pushed and one cycle, from Rust (the embedding API),
Python and Node, in one run, alternating (Rust, Python, Node, Rust, ...) for `--rounds` rounds.
Prints medians and ratios and rewrites the bindings section of BENCHMARKS.md (between
`<!-- bindings-bench:begin -->` and `<!-- bindings-bench:end -->`).

Needs release builds of the three sides, which `--build` makes:
  cargo build --release --workspace --example overhead
  (cd bindings/python && maturin develop --release)     # into the venv of --python
  (cd bindings/node && npm run build:release)
Usage: bindings/bench/run.py [--build] [--rounds N] [--series N] [--python PY] [--no-write]"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import re
import shutil
import statistics
import tempfile
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def run(cmd: list[str], cwd: Path = REPO) -> dict[str, float]:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="store_true", help="make the three release builds first")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--python", default=os.environ.get("TRIPLINE_PY", sys.executable),
                    help="a Python whose environment has the tripline package (release build)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--sides", nargs="*", default=["Rust", "Python", "Node"])
    args = ap.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    # Each side imports a copy of its package made right after its build: `maturin develop` and
    # `napi build` write in place, so a debug build by the suite could otherwise replace the
    # release module under a running benchmark.
    if args.build:
        # --workspace: the features of the whole workspace, as the maturin and napi builds get them
        # (bindings/core pins them), so the three release builds share one engine build.
        subprocess.run(["cargo", "build", "--release", "-q", "--workspace", "--example", "overhead"], cwd=REPO, check=True)
    if args.build and "Python" in args.sides:
        venv = str(Path(args.python).resolve().parent.parent)
        subprocess.run([str(Path(args.python).parent / "maturin"), "develop", "--release", "--quiet"],
                       cwd=REPO / "bindings" / "python", check=True, env={**os.environ, "VIRTUAL_ENV": venv})
    pydir = Path(tempfile.mkdtemp(prefix="tripline-py-bench-"))
    shutil.copytree(REPO / "bindings" / "python" / "python" / "tripline", pydir / "tripline")
    os.environ["PYTHONPATH"] = str(pydir)
    atexit.register(shutil.rmtree, pydir, ignore_errors=True)
    if args.build and "Node" in args.sides:
        subprocess.run(["npm", "run", "--silent", "build:release"], cwd=REPO / "bindings" / "node", check=True)
    pkg = Path(tempfile.mkdtemp(prefix="tripline-node-bench-"))
    for f in ("index.js", "errors.js", "tripline.node"):
        shutil.copy(REPO / "bindings" / "node" / f, pkg / f)
    os.environ["TRIPLINE_NODE_PKG"] = str(pkg)
    atexit.register(shutil.rmtree, pkg, ignore_errors=True)

    sides = {
        "Rust": [str(target / "release" / "examples" / "overhead"), str(args.series)],
        "Python": [args.python, str(HERE / "overhead.py"), str(args.series)],
        "Node": ["node", str(HERE / "overhead.js"), str(args.series)],
    }
    sides = {k: v for k, v in sides.items() if k in args.sides}
    got: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
    load = os.getloadavg()[0]
    for r in range(args.rounds):
        for name, cmd in sides.items():
            got[name].append(run(cmd))
        print(f"round {r + 1}: " + ", ".join(
            f"{k} {v[-1]['push_ms']:.1f} + {v[-1]['cycle_ms']:.1f} ms" for k, v in got.items()), flush=True)

    med = {k: {m: statistics.median(x[m] for x in v) for m in ("push_ms", "cycle_ms")} for k, v in got.items()}
    rust = med["Rust"]
    rows = []
    for k, m in med.items():
        total = m["push_ms"] + m["cycle_ms"]
        rows.append(
            f"| {k} | {m['push_ms']:.1f} ms ({m['push_ms'] * 1e3 / args.series:.2f} µs/series) "
            f"| {m['cycle_ms']:.1f} ms | {m['cycle_ms'] / rust['cycle_ms']:.2f}× "
            f"| {total:.1f} ms | {total / (rust['push_ms'] + rust['cycle_ms']):.2f}× |"
        )
    table = "\n".join([
        "| side | push 10,000 series | one cycle | cycle vs Rust | push + cycle | total vs Rust |",
        "|---|---|---|---|---|---|",
        *rows,
    ]).replace("10,000", f"{args.series:,}")
    print(table)
    if args.no_write:
        return 0
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- bindings-bench:begin -->\nGenerated by `bindings/bench/run.py --rounds {args.rounds}` on {stamp}, "
        f"{os.cpu_count()} cores, load average {load:.2f} at start; medians of {args.rounds} alternating rounds, "
        f"release builds.\n\n{table}\n<!-- bindings-bench:end -->"
    )
    path = REPO / "BENCHMARKS.md"
    text = path.read_text()
    if "<!-- bindings-bench:begin -->" in text:
        text = re.sub(r"<!-- bindings-bench:begin -->.*?<!-- bindings-bench:end -->", lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Bindings overhead (Python, Node)\n\n" + block + "\n"
    path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
