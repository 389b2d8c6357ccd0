#!/usr/bin/env python3
"""The benchmark runner: runs Tripline and its peers (Debian's Prometheus 2.42, vmalert 1.79 over
VictoriaMetrics, and Alertmanager 0.25) side by side on this machine, alternating, prints one table
per comparison and writes the figures to BENCHMARKS.md: each section between its own
`<!-- bench:section KEY -->` / `<!-- bench:section-end KEY -->` markers inside the
`<!-- bench:begin -->` … `<!-- bench:end -->` block, naming the run it came from, and the
"Against the targets" table (between `<!-- bench-targets:begin -->` and `<!-- bench-targets:end -->`)
built from the sections' own figures. `--only X` rewrites only X's sections and X's target rows
and keeps every other section's figures as they were (each with its own run line).

Started by `scripts/bench`, which installs the peers and builds the release binaries first.
Usage: bench/run.py [--quick] [--rounds N] [--only SECTION ...] [--no-write]"""

from __future__ import annotations

import argparse
import atexit
import datetime
import importlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections.common import Context, Section, stop_all  # noqa: E402

# In the order they run.
SECTIONS = ["rule_eval", "api_cost", "pipeline", "cold_start", "backtest"]
# Section keys (Section.key) in the order they appear in BENCHMARKS.md.
KEY_ORDER = ["rule-eval", "api-cost", "pipeline", "pipeline-memory", "cold-start", "backtest", "backtest-full"]
# Titles of the sections of a block written before the per-section markers, to keep their
# figures when `--only` rewrites another one.
LEGACY_TITLES = [
    ("Rule evaluation", "rule-eval"),
    ("API cost", "api-cost"),
    ("Pipeline", "pipeline"),
    ("Memory per active alert", "pipeline-memory"),
    ("Cold start", "cold-start"),
    ("Backtest", "backtest"),
]

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
T_BEGIN, T_END = "<!-- bench-targets:begin -->", "<!-- bench-targets:end -->"
_SECTION = re.compile(r"<!-- bench:section (\S+) -->\n(.*?)\n<!-- bench:section-end \1 -->", re.S)
_TDATA = re.compile(r"<!-- bench-targets-data (.*?) -->", re.S)


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not found"


def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}"


def now_utc() -> str:
    return f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds per comparison")
    ap.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--no-write", action="store_true", help="print, do not update BENCHMARKS.md")
    args = ap.parse_args()

    repo = Path(__file__).resolve().parent.parent
    target = Path(os.environ.get("CARGO_TARGET_DIR", repo / "target"))
    tmp = Path(tempfile.mkdtemp(prefix="tripline-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    ctx = Context(
        repo=repo,
        tmp=tmp,
        tripline=target / "release" / "tripline",
        bench=target / "release" / "tripline-bench",
        prometheus=os.environ.get("TRIPLINE_PROMETHEUS", "prometheus"),
        promtool=os.environ.get("TRIPLINE_PROMTOOL", "promtool"),
        alertmanager=os.environ.get("TRIPLINE_ALERTMANAGER", "prometheus-alertmanager"),
        moto=os.environ.get("TRIPLINE_MOTO_SERVER"),
        rounds=args.rounds or (1 if args.quick else 5),
        quick=args.quick,
        only=tuple(args.only or ()),
    )
    vmalert = os.environ.get("TRIPLINE_VMALERT", "/usr/bin/vmalert")
    versions = [
        version([str(ctx.tripline), "--version"]),
        version([ctx.prometheus, "--version"]),
        version([ctx.alertmanager, "--version"]),
        # vmalert 1.79's -version prints nothing: the Debian package's version instead.
        version(["dpkg-query", "-W", "-f=victoria-metrics (VictoriaMetrics, vmalert) ${Version}", "victoria-metrics"]),
        version(["rustc", "--version"]),
    ]
    cmd = "scripts/bench" + (" --quick" if args.quick else "") + (f" --rounds {args.rounds}" if args.rounds else "") + (
        " --only " + " ".join(args.only) if args.only else ""
    )

    results: list[Section] = []
    failed = []
    started = time.monotonic()
    for name in args.only or SECTIONS:
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        load0 = os.getloadavg()[0]
        try:
            mod = importlib.import_module(f"sections.{name}")
            out = mod.run(ctx)
            secs = time.monotonic() - t0
            for s in out:
                s.run_line = (
                    f"_Run: `{cmd}`, {now_utc()}, {ctx.rounds} round(s) requested; load average (1 min)"
                    f" {load0:.2f} at the section's start, {os.getloadavg()[0]:.2f} at its end, on"
                    f" {os.cpu_count()} cores; the section took {secs / 60:.1f} min._"
                )
                print(s.text(), flush=True)
                results.append(s)
        except Exception as e:  # noqa: BLE001 - report and go on with the other sections
            print(f"!! {name} failed: {e!r}", file=sys.stderr, flush=True)
            failed.append(name)
        finally:
            stop_all()
            print(f"== {name}: {time.monotonic() - t0:.0f} s", flush=True)
    print(f"== all sections: {(time.monotonic() - started) / 60:.1f} min", flush=True)

    rows = target_rows(results)
    if rows:
        print("Against the targets (this run)")
        for r in rows:
            print("  " + " | ".join(r))
    if not args.no_write and not args.quick and results:
        write_benchmarks(repo / "BENCHMARKS.md", results, versions)
    if failed:
        print(f"failed sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def verdict(met) -> str:
    return {True: "yes", False: "**no**"}.get(met, "not measured")


def target_rows(results: list[Section], stored: dict | None = None) -> list[list[str]]:
    """The "Against the targets" rows: this run's sections', then (from `stored`, the previous
    table's data) those of sections this run did not rewrite, in KEY_ORDER."""
    data = dict(stored or {})
    for s in results:
        data[s.key] = {"run": run_date(s.run_line), "rows": [[t, m, met] for t, m, met in s.targets]}
    out = []
    for key in sorted(data, key=lambda k: KEY_ORDER.index(k) if k in KEY_ORDER else len(KEY_ORDER)):
        for t, m, met in data[key]["rows"]:
            out.append([t, m, verdict(met), data[key]["run"]])
    return out


def run_date(line: str) -> str:
    m = re.search(r"`([^`]*)`, (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", line)
    return f"{m.group(2)}, `{m.group(1)}`" if m else "?"


def legacy_sections(block: str) -> dict[str, str]:
    """Sections of a block written before the per-section markers, keyed by their titles' keys,
    each given the block's own "Generated by" line as its run line."""
    gen = re.search(r"Generated by `([^`]*)` on ([^.]*UTC)", block)
    run = f"_Run: `{gen.group(1)}`, {gen.group(2)} (written before per-section run lines)._" if gen else ""
    out = {}
    for chunk in re.split(r"\n(?=### )", block):
        if not chunk.startswith("### "):
            continue
        title = chunk[4:].split("\n", 1)[0]
        key = next((k for prefix, k in LEGACY_TITLES if title.startswith(prefix)), None)
        if key and key not in out:
            head, _, rest = chunk.partition("\n\n")
            out[key] = (head + "\n\n" + (run + "\n\n" if run else "") + rest).rstrip("\n")
    return out


def write_benchmarks(path: Path, results: list[Section], versions: list[str]) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    old = text.split(BEGIN, 1)[1].split(END, 1)[0] if BEGIN in text and END in text else ""
    sections = {m.group(1): m.group(2) for m in _SECTION.finditer(old)} or legacy_sections(old)
    for s in results:
        sections[s.key] = s.markdown().rstrip("\n")
    ordered = sorted(sections, key=lambda k: KEY_ORDER.index(k) if k in KEY_ORDER else len(KEY_ORDER))
    body = [
        BEGIN,
        "Every section names the run its figures come from; `scripts/bench --only X` rewrites only X's.",
        f"Machine and versions (at the latest write, {now_utc()}):",
        "",
        f"- {machine()}",
        *[f"- {v}" for v in versions],
        "",
        *[f"<!-- bench:section {k} -->\n{sections[k]}\n<!-- bench:section-end {k} -->\n" for k in ordered],
        END,
    ]
    block = "\n".join(body)
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _m: block, text, count=1, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Side by side with the peers\n\n" + block + "\n"

    told = text.split(T_BEGIN, 1)[1].split(T_END, 1)[0] if T_BEGIN in text and T_END in text else ""
    m = _TDATA.search(told)
    stored = json.loads(m.group(1)) if m else {}
    for s in results:
        stored[s.key] = {"run": run_date(s.run_line), "rows": [[t, mm, met] for t, mm, met in s.targets]}
    stored = {k: v for k, v in stored.items() if v["rows"]}
    rows = target_rows([], stored)
    table = [
        T_BEGIN,
        "| target | measured | met? | run |",
        "|---|---|---|---|",
        *["| " + " | ".join(r) + " |" for r in rows],
        f"<!-- bench-targets-data {json.dumps(stored, ensure_ascii=False)} -->",
        T_END,
    ]
    tblock = "\n".join(table)
    if T_BEGIN in text and T_END in text:
        text = re.sub(re.escape(T_BEGIN) + r".*?" + re.escape(T_END), lambda _m: tblock, text, count=1, flags=re.S)
    else:
        text = text.replace("## Side by side with the peers", "## Against the targets\n\n" + tblock + "\n\n## Side by side with the peers", 1)
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
