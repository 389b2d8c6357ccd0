"""Rule evaluation side by side: N instances of Tripline's threshold rule (`tripline-bench cycle`,
the workload of `tripline::bench` and criterion's `cycle` benchmark) against Debian's Prometheus
evaluating N equivalent alerting rules (`bench_value{series="sI"} > 100`, one per instance) over
its local TSDB holding the same data: N series, one in ten over 100.

Prometheus gets its data by scraping a loopback exporter (a Python thread serving the N gauge
lines); the figures are read from its own `/metrics` (`prometheus_rule_group_last_duration_seconds`
after each evaluation) once all N/10 alerts are firing. Each round starts a fresh process on each
side (fresh data directory for Prometheus), so peak RSS is per process and per size."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import time
import urllib.request

from .common import (
    Context,
    Section,
    alternate,
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
# evaluates its instances one after another (one core each side). Prometheus runs groups
# concurrently, so splitting the rules in G groups would let it use G cores.
GROUPS = 1


def evaluation_interval_s(n: int) -> int:
    """Every second, or every 3 s from 10,000 rules, so evaluations (up to ≈ 1.5 s there on a busy
    2-core machine) do not run back to back."""
    return 1 if n < 10_000 else 3

# Rare scrapes, so ingestion competes as little as possible with the evaluations measured (the
# samples stay visible to the rules for the 5-minute lookback).
SCRAPE_INTERVAL_S = 10
WARMUP = 3  # evaluations / cycles not measured, after all alerts fire


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


def _get(url: str, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def firing(url: str) -> int:
    alerts = json.loads(_get(f"{url}/api/v1/alerts"))["data"]["alerts"]
    return sum(1 for a in alerts if a["state"] == "firing")


_METRIC = re.compile(r'^(prometheus_rule_group_last_(?:duration|evaluation_timestamp)_seconds)\{rule_group="([^"]*)"\} (\S+)$')


def group_figures(url: str) -> dict[str, tuple[float, float]]:
    """{group: (last evaluation timestamp, last duration in seconds)} from Prometheus's /metrics."""
    ts: dict[str, float] = {}
    dur: dict[str, float] = {}
    for line in _get(f"{url}/metrics").decode().splitlines():
        m = _METRIC.match(line)
        if m:
            (ts if m.group(1).endswith("timestamp_seconds") else dur)[m.group(2)] = float(m.group(3))
    return {g: (ts[g], dur[g]) for g in ts if g in dur}


def prometheus_side(ctx: Context, n: int, evaluations: int, round_no: int) -> dict:
    work = ctx.tmp / f"rule_eval-prom-{n}-{round_no}"
    work.mkdir()
    exporter = Exporter(n)
    try:
        (work / "rules.yml").write_text(rules_yaml(n))
        (work / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  scrape_timeout: {SCRAPE_INTERVAL_S}s\n"
            f"  evaluation_interval: {evaluation_interval_s(n)}s\n"
            "rule_files: [rules.yml]\n"
            "scrape_configs:\n  - job_name: bench\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{exporter.port}']\n"
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
            wait_http(f"{url}/-/ready", proc=p)
            # The rules must see the data: every tenth series fires (`for` is 0).
            want = (n + 9) // 10
            deadline = time.monotonic() + 120 + n / 100
            got = -1
            while time.monotonic() < deadline:
                if p.poll() is not None:
                    raise RuntimeError(f"prometheus exited with {p.returncode}; see {work / 'prometheus.log'}")
                got = firing(url)
                if got == want:
                    break
                time.sleep(0.2)
            if got != want:
                raise RuntimeError(f"prometheus: {got} alerts firing, expected {want}")
            # Collect the duration of each evaluation after the warm-up ones.
            seen: dict[str, float] = {}
            samples: list[float] = []
            skipped = 0
            deadline = time.monotonic() + (WARMUP + evaluations) * evaluation_interval_s(n) * 10 + 60
            while len(samples) < evaluations:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"prometheus: only {len(samples)} evaluations of {evaluations} in time")
                figures = group_figures(url)
                if len(figures) != GROUPS:
                    raise RuntimeError(f"prometheus reports {len(figures)} rule groups, expected {GROUPS}")
                fresh = {g: d for g, (ts, d) in figures.items() if seen.get(g) != ts}
                if len(fresh) == GROUPS:  # every group evaluated again: one more sample
                    seen.update({g: ts for g, (ts, _) in figures.items()})
                    if skipped < WARMUP + 1:  # +1: the evaluation already done when we first look
                        skipped += 1
                    else:
                        samples.append(sum(fresh.values()))
                time.sleep(0.2)
            if firing(url) != want:
                raise RuntimeError("prometheus: the firing alerts changed while measuring")
            rss = peak_rss_kib(p.pid)
        finally:
            stop(p)
    finally:
        exporter.close()
    return {
        "p50_ms": percentile(samples, 50) * 1e3,
        "p99_ms": percentile(samples, 99) * 1e3,
        "peak_rss_kib": rss,
    }


def tripline_side(ctx: Context, n: int, cycles: int) -> dict:
    out = subprocess.run(
        [str(ctx.bench), "cycle", "--instances", str(n), "--cycles", str(cycles), "--warmup", str(WARMUP)],
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


def run(ctx: Context) -> list[Section]:
    sizes = (100, 1000) if ctx.quick else (1000, 10000)
    samples = 10 if ctx.quick else 30
    section = Section(
        key="rule-eval",
        title="Rule evaluation: Tripline cycles vs Prometheus rule groups",
        header=[
            "size",
            "Tripline p50 / p99 per cycle",
            "µs per instance",
            "Tripline peak RSS",
            "Prometheus p50 / p99 per group eval",
            "µs per rule",
            "Prometheus peak RSS",
            "ratio (Prometheus / Tripline, p50)",
        ],
    )
    for n in sizes:
        counter = iter(range(ctx.rounds))
        trip, prom = alternate(
            ctx.rounds,
            lambda: tripline_side(ctx, n, samples),
            lambda: prometheus_side(ctx, n, samples, next(counter)),
        )
        t50 = median([r["p50_ms"] for r in trip])
        t99 = median([r["p99_ms"] for r in trip])
        p50 = median([r["p50_ms"] for r in prom])
        p99 = median([r["p99_ms"] for r in prom])
        section.rows.append(
            [
                f"{n:,}",
                f"{t50:.1f} / {t99:.1f} ms",
                f"{t50 * 1e3 / n:.1f}",
                mib(max(r["peak_rss_kib"] for r in trip)),
                f"{p50:.1f} / {p99:.1f} ms",
                f"{p50 * 1e3 / n:.1f}",
                mib(max(r["peak_rss_kib"] for r in prom)),
                f"{p50 / t50:.2f}×" if t50 else "n/a",
            ]
        )
    section.notes = [
        f"{ctx.rounds} round(s), sides alternating, a fresh process each side each round; p50/p99 are "
        f"over {samples} measured cycles or evaluations per round (after {WARMUP} unmeasured ones, "
        "with all N/10 alerts already firing), then the median over rounds; peak RSS (VmHWM) is the "
        "largest over rounds. Ratio above 1: Tripline is faster.",
        "Tripline: `tripline-bench cycle`, one whole `run_cycle_at` per instant (one a minute, "
        "injected): plan, fetch of N pushed in-memory series, N Rhai `evaluate` calls, state "
        "machine, store (SQLite in memory), notification pipeline flush (no receivers). One thread "
        "evaluates the instances one after another.",
        f"Prometheus: `prometheus_rule_group_last_duration_seconds` of {GROUPS} rule group holding "
        f"the N alerting rules (`bench_value{{series=\"sI\"}} > {THRESHOLD}`, `for: 0s`), evaluated "
        f"every {evaluation_interval_s(sizes[0])}s ({evaluation_interval_s(10_000)}s from 10,000 rules) over its TSDB (head block, data scraped every "
        f"{SCRAPE_INTERVAL_S}s from a loopback exporter): N PromQL queries, the alert state "
        "machine and the `ALERTS`/`ALERTS_FOR_STATE` series writes; no Alertmanager is configured, "
        "so no notification work. Rules within a group run one after another; Prometheus runs "
        "groups concurrently, so one group is the like-for-like setting (one core each side).",
        "Prometheus's figure is rule evaluation only; Tripline's includes the store and the "
        "pipeline. Neither includes getting the data in (scrape, push).",
    ]
    return [section]
