"""Rule evaluation side by side: N instances of Tripline's threshold rule (`tripline-bench cycle`,
the workload of `tripline::bench` and criterion's `cycle` benchmark) against two peers evaluating N
equivalent alerting rules (`bench_value{series="sI"} > 100`, one per instance, one group) over the
same data, N series, one in ten over 100:

- Debian's Prometheus, over its local TSDB, which scrapes a loopback exporter (a Python thread
  serving the N gauge lines); figures from its own `/metrics`
  (`prometheus_rule_group_last_duration_seconds` after each evaluation).
- Debian's vmalert (1.79) over a VictoriaMetrics single node on loopback, which scrapes the same
  exporter (`-promscrape.config`); figures from vmalert's own `/metrics`
  (`vmalert_iteration_duration_seconds_sum`/`_count` of the group: one evaluation per increment).

Figures are taken once all N/10 alerts are firing. Each round starts a fresh process on each side
(fresh data directories), so peak RSS is per process and per size. At the large sizes an
evaluation takes seconds, so those sizes run fewer rounds and samples (SIZES below); a peer that
cannot finish a size is recorded as such in the table instead of failing the section."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass

from .common import (
    Context,
    Section,
    WebhookSink,
    free_port,
    median,
    mib,
    peak_rss_kib,
    percentile,
    serve,
    start,
    stop,
    wait_http,
)

THRESHOLD = 100
# One rule group: rules within a group are evaluated one after another, as Tripline's cycle
# evaluates its instances one after another (one core each side). Prometheus and vmalert run
# groups concurrently, so splitting the rules in G groups would let them use G cores.
GROUPS = 1
# Rare scrapes, so ingestion competes as little as possible with the evaluations measured (the
# samples stay visible to the rules for the 5-minute lookback).
SCRAPE_INTERVAL_S = 10


@dataclass(frozen=True)
class Size:
    """How one size is run. Intervals only pace the evaluations; the figure is each evaluation's
    own duration. An evaluation longer than its interval is followed at once by the next (both
    peers tick with a Go ticker, which keeps one pending tick), so at 100,000 rules they run back
    to back."""

    n: int
    samples: int  # measured evaluations / cycles per round
    warmup: int  # unmeasured ones after all alerts fire
    max_rounds: int | None  # cap on --rounds (None: all of them)
    prom_interval_s: int
    vmalert_interval_s: int


# Evaluation costs on this 2-core machine (loaded, 2026-12-02): Prometheus ≈ 70–150 µs per rule,
# vmalert ≈ 450–600 µs per rule (an HTTP query to VictoriaMetrics each), Tripline ≈ 5–10 µs.
FULL = [
    Size(1_000, samples=10, warmup=2, max_rounds=None, prom_interval_s=1, vmalert_interval_s=1),
    Size(10_000, samples=5, warmup=1, max_rounds=3, prom_interval_s=2, vmalert_interval_s=6),
    Size(100_000, samples=1, warmup=0, max_rounds=1, prom_interval_s=10, vmalert_interval_s=30),
]
QUICK = [
    Size(100, samples=5, warmup=1, max_rounds=1, prom_interval_s=1, vmalert_interval_s=1),
    Size(1_000, samples=5, warmup=1, max_rounds=1, prom_interval_s=1, vmalert_interval_s=1),
]


def value(i: int) -> int:
    """Series sI: one in ten over the threshold (as `tripline::bench::threshold_value`)."""
    return 150 if i % 10 == 0 else 50


class Exporter:
    """A threaded loopback HTTP server answering every GET with the N `bench_value` gauges."""

    def __init__(self, n: int) -> None:
        lines = ["# TYPE bench_value gauge"]
        lines += [f'bench_value{{series="s{i}"}} {value(i)}' for i in range(n)]
        body = ("\n".join(lines) + "\n").encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("content-type", "text/plain; version=0.0.4")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = serve(Handler)
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rules_yaml(n: int) -> str:
    out = ["groups:"]
    for g in range(GROUPS):
        out += [f"  - name: bench{g}", "    rules:"]
        for i in range(g, n, GROUPS):
            out += [
                "      - alert: BenchThreshold",
                f"        expr: 'bench_value{{series=\"s{i}\"}} > {THRESHOLD}'",
                "        labels: {severity: warning}",
                "        annotations: {summary: over}",
            ]
    return "\n".join(out) + "\n"


def scrape_yaml(port: int, extra: str = "") -> str:
    return (
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  scrape_timeout: {SCRAPE_INTERVAL_S}s\n{extra}"
        "scrape_configs:\n  - job_name: bench\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n"
    )


def _get(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def firing(url: str) -> int:
    """Firing alerts from `/api/v1/alerts` (Prometheus and vmalert answer the same shape)."""
    alerts = json.loads(_get(f"{url}/api/v1/alerts"))["data"]["alerts"] or []
    return sum(1 for a in alerts if a["state"] == "firing")


def wait_firing(name: str, url: str, p: subprocess.Popen, n: int, log) -> None:
    """Until every tenth rule fires (`for` is 0): the rules see the data."""
    want = (n + 9) // 10
    deadline = time.monotonic() + 180 + n / 100
    got = -1
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{name} exited with {p.returncode}; see {log}")
        got = firing(url)
        if got == want:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{name}: {got} alerts firing, expected {want}")


_PROM = re.compile(r'^(prometheus_rule_group_last_(?:duration|evaluation_timestamp)_seconds)\{rule_group="([^"]*)"\} (\S+)$')


def prom_group_figures(url: str) -> dict[str, tuple[float, float]]:
    """{group: (last evaluation timestamp, last duration in seconds)} from Prometheus's /metrics."""
    ts: dict[str, float] = {}
    dur: dict[str, float] = {}
    for line in _get(f"{url}/metrics").decode().splitlines():
        m = _PROM.match(line)
        if m:
            (ts if m.group(1).endswith("timestamp_seconds") else dur)[m.group(2)] = float(m.group(3))
    return {g: (ts[g], dur[g]) for g in ts if g in dur}


def prometheus_side(ctx: Context, size: Size, round_no: int) -> dict:
    n, interval = size.n, size.prom_interval_s
    work = ctx.tmp / f"rule_eval-prom-{n}-{round_no}"
    work.mkdir()
    exporter = Exporter(n)
    try:
        (work / "rules.yml").write_text(rules_yaml(n))
        (work / "prometheus.yml").write_text(
            scrape_yaml(exporter.port, f"  evaluation_interval: {interval}s\nrule_files: [rules.yml]\n")
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        p = start(
            [
                ctx.prometheus,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            work / "prometheus.log",
            cwd=work,
        )
        try:
            wait_http(f"{url}/-/ready", proc=p, timeout=120)
            wait_firing("prometheus", url, p, n, work / "prometheus.log")
            # The duration of each evaluation after the warm-up ones.
            seen: dict[str, float] = {}
            samples: list[float] = []
            skipped = 0
            deadline = time.monotonic() + (size.warmup + size.samples + 2) * interval * 10 + 60
            while len(samples) < size.samples:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"prometheus: only {len(samples)} evaluations of {size.samples} in time")
                figures = prom_group_figures(url)
                if len(figures) != GROUPS:
                    raise RuntimeError(f"prometheus reports {len(figures)} rule groups, expected {GROUPS}")
                fresh = {g: d for g, (ts, d) in figures.items() if seen.get(g) != ts}
                if len(fresh) == GROUPS:  # every group evaluated again: one more sample
                    seen.update({g: ts for g, (ts, _) in figures.items()})
                    if skipped < size.warmup + 1:  # +1: the evaluation already done when we first look
                        skipped += 1
                    else:
                        samples.append(sum(fresh.values()))
                time.sleep(min(0.2, interval / 5))
            if firing(url) != (n + 9) // 10:
                raise RuntimeError("prometheus: the firing alerts changed while measuring")
            rss = peak_rss_kib(p.pid)
        finally:
            stop(p)
    finally:
        exporter.close()
    return {"samples": samples, "peak_rss_kib": rss}


_VMALERT = re.compile(r'^vmalert_iteration_duration_seconds_(sum|count)\{group="([^"]*)"[^}]*\} (\S+)$')


def vmalert_iterations(url: str) -> tuple[float, float]:
    """(count, sum) of the group's evaluations so far, from vmalert's /metrics. It also lists ≈ 6
    metrics per rule, so this is polled only twice per evaluation interval."""
    got: dict[str, float] = {}
    for line in _get(f"{url}/metrics", timeout=120).decode().splitlines():
        if line.startswith("vmalert_iteration_duration_seconds_"):
            m = _VMALERT.match(line)
            if m:
                got[m.group(1)] = got.get(m.group(1), 0.0) + float(m.group(3))
    if set(got) != {"sum", "count"}:
        raise RuntimeError("vmalert's /metrics has no vmalert_iteration_duration_seconds_sum/_count")
    return got["count"], got["sum"]


def vmalert_side(ctx: Context, size: Size, round_no: int, vm: str, vmalert: str) -> dict:
    n, interval = size.n, size.vmalert_interval_s
    work = ctx.tmp / f"rule_eval-vmalert-{n}-{round_no}"
    work.mkdir()
    exporter = Exporter(n)
    # vmalert 1.79 refuses to start with alerting rules and no notifier (it has no
    # `-notifier.blackhole`): a loopback sink answering 200; `-rule.resendDelay=24h` has each
    # alert sent once, when it starts firing, before anything is measured.
    sink = WebhookSink()
    try:
        (work / "rules.yml").write_text(rules_yaml(n))
        (work / "scrape.yml").write_text(scrape_yaml(exporter.port))
        vm_port, port = free_port(), free_port()
        vmp = start(
            [
                vm,
                f"-storageDataPath={work / 'vm-data'}",
                f"-httpListenAddr=127.0.0.1:{vm_port}",
                f"-promscrape.config={work / 'scrape.yml'}",
                # The default 30 s hides a fresh scrape from queries for half a minute; the data
                # here is one sample per scrape, nothing is incomplete.
                "-search.latencyOffset=1s",
                "-loggerLevel=ERROR",
            ],
            work / "vm.log",
        )
        try:
            wait_http(f"http://127.0.0.1:{vm_port}/health", proc=vmp)
            # vmalert evaluates at once when it starts: start it once VictoriaMetrics serves all N
            # series, or its first evaluation (a minute at 100,000 rules) finds nothing.
            deadline = time.monotonic() + 120 + n / 100
            while True:
                q = json.loads(_get(f"http://127.0.0.1:{vm_port}/api/v1/query?query=count(bench_value)"))
                got = q["data"]["result"]
                if got and int(float(got[0]["value"][1])) == n:
                    break
                if time.monotonic() > deadline or vmp.poll() is not None:
                    raise RuntimeError(f"VictoriaMetrics did not serve the {n} series in time; see {work / 'vm.log'}")
                time.sleep(0.5)
            url = f"http://127.0.0.1:{port}"
            p = start(
                [
                    vmalert,
                    f"-rule={work / 'rules.yml'}",
                    f"-datasource.url=http://127.0.0.1:{vm_port}",
                    f"-notifier.url=http://127.0.0.1:{sink.port}",
                    "-rule.resendDelay=24h",
                    f"-evaluationInterval={interval}s",
                    f"-httpListenAddr=127.0.0.1:{port}",
                    "-loggerLevel=ERROR",
                ],
                work / "vmalert.log",
            )
            try:
                wait_http(f"{url}/health", proc=p, timeout=120)
                wait_firing("vmalert", url, p, n, work / "vmalert.log")
                # All N/10 alerts fire once the evaluation has reached the last firing rule (the
                # last tenth of the group at most is left): a second later it has been counted,
                # so the next increment is a whole evaluation in the steady state.
                time.sleep(1.0)
                samples: list[float] = []
                count, total = vmalert_iterations(url)
                skip = size.warmup
                deadline = time.monotonic() + (size.warmup + size.samples + 2) * interval * 10 + 60
                while len(samples) < size.samples:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"vmalert: only {len(samples)} evaluations of {size.samples} in time")
                    if p.poll() is not None:
                        raise RuntimeError(f"vmalert exited with {p.returncode}")
                    time.sleep(interval / 2)
                    c, t = vmalert_iterations(url)
                    k = int(c - count)
                    if k > 0:
                        # k evaluations since the last look (normally 1): their mean, k times.
                        for _ in range(k):
                            if skip:
                                skip -= 1
                            else:
                                samples.append((t - total) / k)
                        count, total = c, t
                samples = samples[: size.samples]
                if firing(url) != (n + 9) // 10:
                    raise RuntimeError("vmalert: the firing alerts changed while measuring")
                rss = peak_rss_kib(p.pid)
                vm_rss = peak_rss_kib(vmp.pid)
            finally:
                stop(p)
        finally:
            stop(vmp)
    finally:
        exporter.close()
        sink.close()
    return {"samples": samples, "peak_rss_kib": rss, "store_peak_rss_kib": vm_rss}


def tripline_side(ctx: Context, size: Size) -> dict:
    n = size.n
    out = subprocess.run(
        [
            str(ctx.bench),
            "cycle",
            "--instances",
            str(n),
            "--cycles",
            str(max(size.samples, 10)),
            "--warmup",
            str(max(size.warmup, 1)),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tripline-bench cycle failed ({out.returncode}): {out.stderr.strip()}")
    r = json.loads(out.stdout)
    want = (n + 9) // 10
    if r["firing"] != want:
        raise RuntimeError(f"tripline: {r['firing']} alerts firing, expected {want}")
    return r


def attempt(name: str, fn):
    """A side's result, or {"error": …} when it could not run this size (recorded, not raised)."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - reported in the table
        print(f"   {name} failed: {e}", flush=True)
        return {"error": str(e).splitlines()[0][:160]}


def run(ctx: Context) -> list[Section]:
    sizes = QUICK if ctx.quick else FULL
    vmalert = os.environ.get("TRIPLINE_VMALERT", "/usr/bin/vmalert")
    vm = os.path.join(os.path.dirname(vmalert), "victoria-metrics")
    results: dict[int, dict[str, list[dict]]] = {}
    rounds_of: dict[int, int] = {}
    for size in sizes:
        rounds = min(ctx.rounds, size.max_rounds or ctx.rounds)
        rounds_of[size.n] = rounds
        res: dict[str, list[dict]] = {"tripline": [], "prometheus": [], "vmalert": []}
        for rnd in range(rounds):  # alternating; who goes first rotates every round
            sides = [
                ("tripline", lambda: tripline_side(ctx, size)),
                ("prometheus", lambda: prometheus_side(ctx, size, rnd)),
                ("vmalert", lambda: vmalert_side(ctx, size, rnd, vm, vmalert)),
            ]
            sides = sides[rnd % 3 :] + sides[: rnd % 3]
            for name, fn in sides:
                t0 = time.monotonic()
                r = attempt(name, fn)
                res[name].append(r)
                print(f"   {size.n:,} round {rnd + 1} {name}: {time.monotonic() - t0:.0f} s", flush=True)
        results[size.n] = res

    def figures(rs: list[dict]) -> dict | None:
        ok = [r for r in rs if "error" not in r]
        if not ok:
            return None
        if "p50_ms" in ok[0]:  # tripline-bench's own percentiles
            p50 = median([r["p50_ms"] for r in ok])
            p99 = median([r["p99_ms"] for r in ok])
        else:
            p50 = median([percentile(r["samples"], 50) * 1e3 for r in ok])
            p99 = median([percentile(r["samples"], 99) * 1e3 for r in ok])
        out = {"p50": p50, "p99": p99, "rss": max(r["peak_rss_kib"] for r in ok), "rounds": len(ok)}
        if "store_peak_rss_kib" in ok[0]:
            out["store"] = max(r["store_peak_rss_kib"] for r in ok)
        return out

    section = Section(
        key="rule-eval",
        title="Rule evaluation: Tripline cycles vs Prometheus and vmalert rule groups",
        header=[
            "size",
            "side",
            "p50 / p99 per cycle or group evaluation",
            "µs per instance or rule (p50)",
            "peak RSS",
            "RSS per instance or rule",
            "peak RSS of the TSDB it queries",
            "peer / Tripline (p50)",
            "rounds × samples",
        ],
    )
    labels = [
        ("tripline", "Tripline"),
        ("prometheus", "Prometheus 2.42"),
        ("vmalert", "vmalert 1.79"),
    ]
    figs = {n: {name: figures(rs) for name, rs in res.items()} for n, res in results.items()}
    prev: dict[str, tuple[int, float]] = {}
    for size in sizes:
        n = size.n
        trip = figs[n]["tripline"]
        for name, label in labels:
            f = figs[n][name]
            if f is None:
                err = results[n][name][0].get("error", "?")
                section.rows.append([f"{n:,}", label, f"could not run: {err}", "", "", "", "", "", ""])
                continue
            per = ""
            if name in prev:
                n0, rss0 = prev[name]
                per = f"{(f['rss'] - rss0) * 1024 / (n - n0):,.0f} B"
            prev[name] = (n, f["rss"])
            store = {
                "tripline": "in process (SQLite in memory)",
                "prometheus": "in process (its TSDB)",
                "vmalert": f"VictoriaMetrics: {mib(f['store'])}" if "store" in f else "",
            }[name]
            samples = max(size.samples, 10) if name == "tripline" else size.samples
            section.rows.append(
                [
                    f"{n:,}",
                    label,
                    f"{f['p50']:.1f} / {f['p99']:.1f} ms",
                    f"{f['p50'] * 1e3 / n:.1f}",
                    mib(f["rss"]),
                    per,
                    store,
                    "1.00×" if name == "tripline" else (f"{f['p50'] / trip['p50']:.2f}×" if trip else "n/a"),
                    f"{f['rounds']} × {samples}",
                ]
            )

    # Issue #7's rule-evaluation targets, from these figures.
    at10k = figs.get(10_000, {}).get("tripline")
    if at10k:
        us = at10k["p50"] * 1e3 / 10_000
        section.targets.append(
            ["rule evaluation ≤ 10 µs per instance at 10,000 instances (issue 7)", f"{us:.1f} µs", us <= 10]
        )
    for peer, label, issue in [("prometheus", "Prometheus", "issue 7"), ("vmalert", "vmalert", "issue 15's second peer")]:
        parts, verdicts = [], []
        for size in sizes:
            t, p = figs[size.n]["tripline"], figs[size.n][peer]
            if t is None or p is None:
                parts.append(f"{size.n:,}: not measured")
                verdicts.append(None)
            else:
                parts.append(f"{size.n:,}: {p['p50'] / t['p50']:.1f}×")
                verdicts.append(p["p50"] > t["p50"])
        met = False if False in verdicts else (None if None in verdicts else True)
        section.targets.append(
            [f"faster than {label} per rule on the same data ({issue}; peer p50 / Tripline p50)", "; ".join(parts), met]
        )

    lines = ", ".join(
        f"{s.n:,}: Prometheus every {s.prom_interval_s} s, vmalert every {s.vmalert_interval_s} s" for s in sizes
    )
    section.notes = [
        f"Rounds: {ctx.rounds} requested; the larger sizes are capped (rounds × samples column), because one"
        " evaluation of 100,000 rules takes seconds to a minute on a peer. Sides alternate (who goes first"
        " rotates each round), each side a fresh process each round; p50/p99 are over the measured cycles or"
        " evaluations of a round (after the warm-up ones, with all N/10 alerts already firing), then the"
        " median over rounds; peak RSS (VmHWM) is the largest over rounds. Peer / Tripline above 1: Tripline"
        " is faster. A peer that could not run a size says so in its row.",
        "RSS per instance or rule: (peak RSS at N − peak RSS at the next smaller size) / ΔN, the same side;"
        " the smallest size has none.",
        "Tripline: `tripline-bench cycle`, one whole `run_cycle_at` per instant (one a minute, "
        "injected): plan, fetch of N pushed in-memory series, N Rhai `evaluate` calls, state "
        "machine, store (SQLite in memory), notification pipeline flush (no receivers). One thread "
        "evaluates the instances one after another.",
        f"Prometheus: `prometheus_rule_group_last_duration_seconds` of {GROUPS} rule group holding "
        f"the N alerting rules (`bench_value{{series=\"sI\"}} > {THRESHOLD}`, `for: 0s`) over its TSDB "
        f"(head block, data scraped every {SCRAPE_INTERVAL_S}s from a loopback exporter): N PromQL queries, "
        "the alert state machine and the `ALERTS`/`ALERTS_FOR_STATE` series writes; no Alertmanager is "
        "configured, so no notification work.",
        f"vmalert: the same rules file (one group, its default `concurrency: 1`: rules one after another) with "
        f"`-datasource.url` a VictoriaMetrics 1.79 single node on loopback that scrapes the same exporter every "
        f"{SCRAPE_INTERVAL_S}s (`-promscrape.config`, `-search.latencyOffset=1s` instead of 30 s so a scrape is "
        "visible at once); per evaluation, the delta of `vmalert_iteration_duration_seconds_sum` over one of "
        "`_count` for the group (vmalert's /metrics polled twice per interval; it also lists ≈ 6 metrics per "
        "rule, whose rendering runs beside the evaluations). Each rule is one HTTP instant query to "
        "VictoriaMetrics. No `-remoteWrite.url`, so no `ALERTS` series are written (Prometheus writes "
        "them); vmalert 1.79 has no `-notifier.blackhole` and will not start without a notifier, so "
        "`-notifier.url` is a loopback sink answering 200 and `-rule.resendDelay=24h` sends each alert once, "
        "when it first fires, before anything is measured. vmalert's peak RSS is its own; VictoriaMetrics's is "
        "given beside it (Prometheus's TSDB is inside Prometheus's figure).",
        f"Evaluation intervals (pacing only: each figure is one evaluation's own duration; an evaluation longer "
        f"than its interval is followed at once by the next, as both peers keep one pending tick): {lines}. "
        "Prometheus and vmalert run groups concurrently, so one group is the like-for-like setting (one core "
        "each side).",
        "The peers' figures are rule evaluation only; Tripline's includes the store and the "
        "pipeline. None includes getting the data in (scrape, push).",
    ]
    return [section]
