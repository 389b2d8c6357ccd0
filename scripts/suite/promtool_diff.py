#!/usr/bin/env python3
"""Differential test of `for` and `keep_firing_for` against real Prometheus (`promtool test rules`).

A seeded generator writes random timelines (1-3 series; per step the condition is true, false or
absent; `for` and `keep_firing_for` multiples and non-multiples of the interval, 0 and below it;
intervals of 1m and 2m). A small model of Prometheus' rules/alerting.go (v2.42) predicts the
pending and firing alerts after every step. Each timeline becomes a promtool test file (an
`ALERTS{alertname=...}` check per step) and a `tripline test` case (the same sets, plus the
alerts that resolve in the step). A timeline agrees when both pass; promtool passing is what makes
the prediction Prometheus' own, so Tripline passing the same expectations is agreement.

Usage: promtool_diff.py [--seed N] [--count N] [--keep DIR]; needs promtool and $TRIPLINE_BIN.
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LOOKBACK = 300
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
HOLDS = [0, 20, 30, 45, 60, 90, 120, 150, 180, 240, 300]


def dur(secs):
    return f"{secs}s"


def timeline(rng, i):
    interval = rng.choice([60, 120])
    steps = rng.randint(8, 20)
    names = ["a", "b", "c"][: rng.randint(1, 3)]
    series = {}
    for n in names:
        vals, cur = [], rng.choice("10_")
        for _ in range(steps):
            if rng.random() < 0.35:
                cur = rng.choice("10_")
            vals.append(cur)
        series[n] = vals
    return {
        "name": f"timeline {i}",
        "alert": f"T{i}",
        "interval": interval,
        "steps": steps,
        "for": rng.choice(HOLDS),
        "keep": rng.choice(HOLDS),
        "series": series,
    }


def model(tl):
    """Per step: (active {series: 'pending'|'firing'}, resolved-in-this-step {series})."""
    iv, F, K = tl["interval"], tl["for"], tl["keep"]
    active = {}  # series -> dict(state, active_at, keep_since)
    out = []
    for k in range(tl["steps"]):
        t = k * iv
        true = set()
        for n, vals in tl["series"].items():
            seen = None
            for j in range(k, -1, -1):
                if vals[j] != "_":
                    if t - j * iv <= LOOKBACK:
                        seen = vals[j]
                    break
            if seen == "1":
                true.add(n)
        resolved = set()
        for n in true:
            a = active.get(n)
            if a is None:
                a = active[n] = {"state": "pending", "active_at": t, "keep_since": None}
            a["keep_since"] = None
            if a["state"] == "pending" and t - a["active_at"] >= F:
                a["state"] = "firing"
        for n in list(active):
            if n in true:
                continue
            a = active[n]
            if a["state"] == "firing" and K > 0:
                if a["keep_since"] is None:
                    a["keep_since"] = t
                if t - a["keep_since"] < K:
                    continue
            if a["state"] == "firing":
                resolved.add(n)
            del active[n]
        out.append(({n: a["state"] for n, a in active.items()}, resolved))
    return out


def promtool_files(tl, pred, d):
    rules = os.path.join(d, f"{tl['alert']}.rules.yml")
    with open(rules, "w") as f:
        f.write(
            f"groups:\n- name: g\n  rules:\n  - alert: {tl['alert']}\n    expr: cond == 1\n"
            f"    for: {dur(tl['for'])}\n    keep_firing_for: {dur(tl['keep'])}\n"
        )
    test = os.path.join(d, f"{tl['alert']}.test.yml")
    lines = [
        f"rule_files: [{os.path.basename(rules)}]",
        f"evaluation_interval: {dur(tl['interval'])}",
        "tests:",
        f"- name: {tl['name']}",
        f"  interval: {dur(tl['interval'])}",
        "  input_series:",
    ]
    for n, vals in tl["series"].items():
        lines.append(f"  - series: 'cond{{s=\"{n}\"}}'")
        lines.append(f"    values: '{' '.join(vals)}'")
    lines.append("  promql_expr_test:")
    for k, (active, _) in enumerate(pred):
        lines.append(f"  - expr: ALERTS{{alertname=\"{tl['alert']}\"}}")
        lines.append(f"    eval_time: {dur(k * tl['interval'])}")
        if not active:
            lines.append("    exp_samples: []")
            continue
        lines.append("    exp_samples:")
        for n, state in sorted(active.items()):
            lines.append(
                f"    - labels: 'ALERTS{{alertname=\"{tl['alert']}\", alertstate=\"{state}\", s=\"{n}\"}}'"
            )
            lines.append("      value: 1")
    with open(test, "w") as f:
        f.write("\n".join(lines) + "\n")
    return test


def tripline_case(tl, pred):
    iv = tl["interval"]
    lines = [
        "[[case]]",
        f'name = "{tl["name"]}"',
        f'for = "{dur(tl["for"])}"',
        f'keep_firing_for = "{dur(tl["keep"])}"',
    ]
    for n, vals in tl["series"].items():
        pts = []
        for k, v in enumerate(vals):
            if v != "_":
                ts = T0 + timedelta(seconds=k * iv - 30)
                pts.append(f'["{ts.strftime("%Y-%m-%dT%H:%M:%SZ")}", {v}.0]')
        lines += [
            "[[case.series]]",
            f'match = {{ query = "cond" }}',
            f'labels = {{ s = "{n}" }}',
            f"points = [{', '.join(pts)}]",
        ]
    for k, (active, resolved) in enumerate(pred):
        at = T0 + timedelta(seconds=k * iv)
        exp = [f'{{ state = "{s}", labels = {{ s = "{n}" }} }}' for n, s in sorted(active.items())]
        exp += [f'{{ state = "resolved", labels = {{ s = "{n}" }} }}' for n in sorted(resolved)]
        lines += ["[[case.step]]", f'at = "{at.strftime("%Y-%m-%dT%H:%M:%SZ")}"', f"expect = [{', '.join(exp)}]"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20261101)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--keep", help="write the generated files here and keep them")
    args = ap.parse_args()
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    tripline = os.environ.get("TRIPLINE_BIN") or os.path.join(REPO, "target/debug/tripline")
    rng = random.Random(args.seed)
    d = args.keep or tempfile.mkdtemp(prefix="tripline-promtool-")
    os.makedirs(os.path.join(d, "prom"), exist_ok=True)
    os.makedirs(os.path.join(d, "tripline"), exist_ok=True)
    tls = [timeline(rng, i) for i in range(1, args.count + 1)]
    tests, cases = [], []
    for tl in tls:
        pred = model(tl)
        tests.append(promtool_files(tl, pred, os.path.join(d, "prom")))
        cases.append(tripline_case(tl, pred))
    shutil.copy(os.path.join(REPO, "tests/promtool/diff.rhai"), os.path.join(d, "tripline/diff.rhai"))
    with open(os.path.join(d, "tripline/diff.test.toml"), "w") as f:
        f.write("\n".join(cases))

    prom = subprocess.run([promtool, "test", "rules", *tests], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=os.path.join(d, "prom"))
    prom_failed, current = set(), None
    for line in prom.stdout.splitlines():
        m = re.match(r"Unit Testing:\s+(\S+)", line)
        if m:
            current = os.path.basename(m.group(1)).split(".")[0]
        elif "FAILED" in line and current:
            prom_failed.add(current)
    trip = subprocess.run([tripline, "test", os.path.join(d, "tripline")], capture_output=True, text=True)
    trip_failed = {f"T{m.group(1)}" for m in re.finditer(r"^FAIL .* :: timeline (\d+) ", trip.stdout, re.M)}
    if not re.search(r"^\d+ passed, \d+ failed$", trip.stdout, re.M):
        print(trip.stdout[-2000:], trip.stderr[-2000:])
        trip_failed = {tl["alert"] for tl in tls}
    agree = 0
    for tl in tls:
        a = tl["alert"]
        if a in prom_failed or a in trip_failed:
            who = " and ".join(x for x, s in (("promtool", prom_failed), ("tripline", trip_failed)) if a in s)
            print(f"DISAGREE {tl['name']}: interval {tl['interval']}s for {tl['for']}s "
                  f"keep_firing_for {tl['keep']}s series {tl['series']} ({who} failed)")
        else:
            agree += 1
    if prom_failed:
        print(prom.stdout[-3000:])
    if trip_failed:
        print("\n".join(l for l in trip.stdout.splitlines() if not l.startswith("ok "))[:4000])
    print(f"{agree}/{len(tls)} timelines agree (seed {args.seed})")
    print(f"{agree} passed, {len(tls) - agree} failed")
    if not args.keep:
        shutil.rmtree(d)
    sys.exit(0 if agree == len(tls) else 1)


main()
