"""Backtest beside `vmalert -replay` (issue #16): the same alerting rules replayed over the same
history in one real Prometheus (Debian's), which both query, alternating the two. Sizes: 30 days ×
1,000 rules with `scripts/bench --only backtest` (its own block in BENCHMARKS.md), 7 days × 100
rules in the whole run (SMALL), so that the whole run fits its time budget.

The history is loaded as tests/e2e/backtest/vmalert_replay.rs loads it: an OpenMetrics file (one
sample a minute) backfilled with `promtool tsdb create-blocks-from openmetrics` into a data dir that
a Prometheus then serves. 10 queues (fewer series than rules: 1,000 series × 43,200 minutes would be
43 M samples to backfill on this machine); rule i watches queue i % 10 with its own threshold
(100 + i // 10), so every rule has its own PromQL expression and each side fetches it separately.
Each queue has a 25-minute incident every 12 hours (depth 200 or, every other one, 150: rules with a
threshold ≥ 150 skip those) and two 3-minute bursts a minute apart every 1,000 minutes that stay
pending. Both sides evaluate every minute with `for: 5m`:

- vmalert: one group, `interval: 1m`, `-datasource.queryStep=1m`, `-replay.rulesDelay=0` (its 1 s
  default would add 1,000 s of sleeping), its default 1,000 points per `query_range`; `ALERTS` goes to
  a VictoriaMetrics single node (a fresh one per run), read back with `/api/v1/export`.
- Tripline: `tripline backtest --format json` with a Prometheus source and 1,000 `[[rule]]` instances
  of one Rhai rule whose `query` param is the same expression.

Per run: wall time, user + sys CPU (wait4's rusage) and peak RSS of the replaying process (GNU
time's %M: wait4's own ru_maxrss of a child forked from this Python process counts this process's
memory at the fork, which is why both sides once showed the same 139.6 MiB), the CPU
Prometheus spent meanwhile (/proc/PID/stat) and the requests it served (its own
`prometheus_http_requests_total`). Every run's firing intervals are counted and must equal the other
side's and the count computed here from the generated data."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.request
from datetime import datetime, timezone

from .common import Context, Section, free_port, median, mib, start, stop, wait_http

RULES = 1_000
QUEUES = 10
DAYS = 30
# (days, rules) of the whole run's backtest section (`scripts/bench` without `--only backtest`).
SMALL = (7, 100)
# vmalert's default -replay.maxDatapointsPerQuery: instants per `query_range` at a 1m interval.
VMALERT_POINTS = 1_000


def depth(q: int, m: int) -> float:
    """Queue q's depth at minute m of the range."""
    phase = m + 97 * q
    if phase % 720 < 25:
        return 150.0 if (phase // 720) % 2 else 200.0
    burst = (m + 31 * q) % 1000
    if burst < 3 or 4 <= burst < 7:
        return 250.0
    return 10.0


def threshold(i: int) -> int:
    return 100 + i // QUEUES


def expected_intervals(minutes: int, rules: int, chunk: int | None = None) -> int:
    """Firing intervals over all rules: runs of firing instants, an instant firing once
    `depth > threshold` has held at every instant for 5 minutes (6 instants), per queue and threshold.

    `chunk`: what vmalert before 1.95 gives instead (VictoriaMetrics issue #5186: `-replay` loses
    the alerts' state between its `query_range` requests): the `for` state starts afresh at every
    `chunk` instants, each request covering [k·chunk, (k+1)·chunk] (the boundary instant is
    evaluated by both), and the firing instants of all requests are counted together."""
    per: dict[tuple[int, bool], int] = {}
    for q in range(QUEUES):
        for high_only in (False, True):
            t = 150 if high_only else 100
            step = chunk or minutes
            firing: set[int] = set()
            for c0 in range(0, minutes, step):
                run = 0
                for m in range(c0, min(c0 + step, minutes) + 1):
                    if depth(q, m) > t:
                        run += 1
                        if run >= 6:
                            firing.add(m)
                    else:
                        run = 0
            per[(q, high_only)] = sum(1 for m in firing if m - 1 not in firing)
    return sum(per[(i % QUEUES, threshold(i) >= 150)] for i in range(rules))


def ratio(a: float, b: float) -> str:
    return "n/a" if b == 0 else f"{a / b:.2f}×"


def rfc(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def expr(i: int) -> str:
    return f'queue_depth{{queue="q{i % QUEUES}"}} > {threshold(i)}'


RULE = """
const RULE = #{ id: "bench/deep-queue", severity: "warning", params: #{ query: "" } };
fn query(p) { #{ depth: prometheus(#{ query: p.query }) } }
fn evaluate(d, p) {
    for s in d.depth {
        let v = s.last();
        if v != () {
            fire(#{ summary: `${s.labels.queue}: ${v} waiting`, labels: #{ queue: s.labels.queue }, value: v });
        }
    }
}
"""


TIME = "/usr/bin/time"  # GNU time (Debian's `time`; scripts/bench installs it)


def timed(cmd: list[str], prom_pid: int, out_dir, cwd=None) -> dict:
    """Runs `cmd` to exit (stdout and stderr to files in `out_dir`); its wall time, user+sys CPU and
    peak RSS (GNU time's %M), and Prometheus's CPU meanwhile."""
    import subprocess

    so, se, peak = out_dir / "stdout", out_dir / "stderr", out_dir / "maxrss"
    p0 = proc_cpu(prom_pid)
    with open(so, "w") as fo, open(se, "w") as fe:
        t0 = time.perf_counter()
        # GNU time forks the command from its own small process and reports that child's
        # ru_maxrss; its CPU is in wait4's rusage of `time` (which includes its waited child).
        p = subprocess.Popen([TIME, "-f", "%M", "-o", str(peak), *cmd], stdout=fo, stderr=fe, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    return {
        "status": p.returncode,
        "wall": wall,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_kib": int(peak.read_text().split()[-1]),
        "prom_cpu": proc_cpu(prom_pid) - p0,
        "stdout": so.read_text(),
        "stderr": se.read_text(),
    }


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prom_requests(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("prometheus_http_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            h = labels.split('handler="', 1)[1].split('"', 1)[0]
            if h.startswith("/api/v1/query"):
                out[h] = out.get(h, 0) + float(value)
    return out


def run(ctx: Context) -> list[Section]:
    import subprocess

    # The full size (30 days × 1,000 rules, ≈ 7 minutes a round here) runs only with
    # `--only backtest`; the whole run uses SMALL so that it fits its time budget. Each size
    # writes its own block (key "backtest-full" or "backtest"). TRIPLINE_BENCH_BACKTEST_RULES /
    # _DAYS override either.
    full = ctx.only == ("backtest",)
    d_days, d_rules = (DAYS, RULES) if full else SMALL
    rules = 20 if ctx.quick else int(os.environ.get("TRIPLINE_BENCH_BACKTEST_RULES", d_rules))
    days = 1 if ctx.quick else int(os.environ.get("TRIPLINE_BENCH_BACKTEST_DAYS", d_days))
    d = ctx.tmp / "backtest"
    d.mkdir(parents=True, exist_ok=True)
    vmalert = os.environ.get("TRIPLINE_VMALERT", "/usr/bin/vmalert")
    vm = os.path.join(os.path.dirname(vmalert), "victoria-metrics")

    # A range ending an hour ago on the hour, as in the e2e test.
    now = int(time.time())
    end = now - now % 3600 - 3600
    minutes = days * 1440
    begin = end - minutes * 60
    t0 = time.perf_counter()
    with open(d / "data.om", "w") as f:
        f.write("# TYPE queue_depth gauge\n")
        for q in range(QUEUES):
            for m in range(minutes + 1):
                f.write(f'queue_depth{{queue="q{q}"}} {depth(q, m)} {begin + m * 60}\n')
        f.write("# EOF\n")
    data = d / "prom-data"
    subprocess.run(
        [ctx.promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(d / "data.om"), str(data)],
        check=True,
    )
    load_secs = time.perf_counter() - t0
    want = expected_intervals(minutes, rules)
    # vmalert 1.79 (Debian's) restarts `for` at each of its 1,000-point requests (see above).
    want_vm = expected_intervals(minutes, rules, chunk=VMALERT_POINTS)
    (d / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    prom = start(
        [
            ctx.prometheus,
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=400d",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        d / "prometheus.log",
    )
    wait_http(f"http://127.0.0.1:{port}/-/ready", proc=prom)
    # Warm Prometheus's caches for both sides alike: one query over the whole range.
    urllib.request.urlopen(
        f"http://127.0.0.1:{port}/api/v1/query_range?query=count(queue_depth)&start={begin}&end={end}&step=3600",
        timeout=120,
    ).read()

    # vmalert's rules and Tripline's config: the same expressions.
    lines = ["groups:", "  - name: depth", "    interval: 1m", "    rules:"]
    for i in range(rules):
        lines += [f"      - alert: DeepQueue{i:04}", f"        expr: '{expr(i)}'", "        for: 5m"]
    (d / "rules.yml").write_text("\n".join(lines) + "\n")
    (d / "rules").mkdir(exist_ok=True)
    (d / "rules" / "deep-queue.rhai").write_text(RULE)
    cfg = [
        'rules_dirs = ["rules"]\n',
        '[store]\ntype = "memory"\n',
        f'[sources.prometheus]\ntype = "prometheus"\nurl = "http://127.0.0.1:{port}"\n',
    ]
    for i in range(rules):
        q = expr(i).replace('"', '\\"')
        cfg.append(
            f'[[rule]]\nuse = "bench/deep-queue"\nname = "DeepQueue{i:04}"\nevery = "0 * * * * *"\n'
            f'for = "5m"\nparams = {{ query = "{q}" }}\n'
        )
    (d / "tripline.toml").write_text("\n".join(cfg))

    def side_vmalert() -> dict:
        vm_dir = d / f"vm-{time.monotonic_ns()}"
        vm_port = free_port()
        vmp = start(
            [vm, f"-storageDataPath={vm_dir}", f"-httpListenAddr=127.0.0.1:{vm_port}", "-loggerLevel=ERROR"],
            d / "vm.log",
        )
        try:
            wait_http(f"http://127.0.0.1:{vm_port}/health", proc=vmp)
            r0 = prom_requests(port)
            r = timed(
                [
                    vmalert,
                    f"-rule={d / 'rules.yml'}",
                    f"-datasource.url=http://127.0.0.1:{port}",
                    "-datasource.queryStep=1m",
                    f"-remoteWrite.url=http://127.0.0.1:{vm_port}",
                    f"-replay.timeFrom={rfc(begin)}",
                    f"-replay.timeTo={rfc(end)}",
                    "-replay.rulesDelay=0",
                    "-replay.disableProgressBar",
                    "-loggerLevel=ERROR",
                ],
                prom.pid,
                d,
            )
            r["requests"] = sum(prom_requests(port).values()) - sum(r0.values())
            if r["status"] != 0:
                raise RuntimeError(f"vmalert exited {r['status']}: {r['stderr'][-2000:]}")
            with urllib.request.urlopen(f"http://127.0.0.1:{vm_port}/internal/force_flush", timeout=60):
                pass
            url = f"http://127.0.0.1:{vm_port}/api/v1/export?match%5B%5D=ALERTS%7Balertstate%3D%22firing%22%7D"
            n = 0
            with urllib.request.urlopen(url, timeout=300) as resp:
                for line in resp:
                    if not line.strip():
                        continue
                    ts = sorted({t // 1000 for t in json.loads(line)["timestamps"]})
                    n += sum(1 for a, b in zip([None, *ts], ts) if a is None or b != a + 60)
            r["intervals"] = n
            return r
        finally:
            stop(vmp)

    def side_tripline(reference: bool = False) -> dict:
        r0 = prom_requests(port)
        r = timed(
            [
                str(ctx.tripline),
                "backtest",
                "--config",
                str(d / "tripline.toml"),
                "--from",
                rfc(begin),
                "--to",
                rfc(end),
                "--format",
                "json",
                "--no-progress",
                *(["--reference"] if reference else []),
            ],
            prom.pid,
            d,
            cwd=d,
        )
        r["requests"] = sum(prom_requests(port).values()) - sum(r0.values())
        if r["status"] != 0:
            raise RuntimeError(f"tripline backtest exited {r['status']}: {r['stderr'][-2000:]}")
        rep = json.loads(r["stdout"])
        r["intervals"] = sum(
            sum(1 for i in s["intervals"] if i.get("start")) for inst in rep["instances"] for s in inst["subjects"]
        )
        r["summary"] = (r["stderr"] or "").strip().splitlines()[-1:]
        # A digest, not the report: a child's peak RSS (wait4) counts this process's memory at
        # the fork, so holding every run's report here would inflate the later runs' figures.
        rep.pop("elapsed_secs", None)
        r["report"] = hashlib.sha256(json.dumps(rep, sort_keys=True).encode()).hexdigest()
        del r["stdout"], rep
        return r

    # TRIPLINE_BENCH_BACKTEST_REFERENCE=1 adds a third side: `tripline backtest --reference`, the
    # plain cycle at every instant without the evaluation memo (the "before" of the memo), whose
    # JSON report must equal the memo's.
    sides = [("vmalert", side_vmalert), ("tripline", side_tripline)]
    if os.environ.get("TRIPLINE_BENCH_BACKTEST_REFERENCE") == "1":
        sides.append(("tripline --reference", lambda: side_tripline(reference=True)))
    res: dict[str, list[dict]] = {name: [] for name, _ in sides}
    for rnd in range(ctx.rounds):  # alternating; who goes first rotates every round
        order = sides[rnd % len(sides) :] + sides[: rnd % len(sides)]
        for name, fn in order:
            load = os.getloadavg()[0]
            r = fn()
            r["load"] = (load, os.getloadavg()[0])
            print(
                f"  round {rnd + 1} {name}: {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU,"
                f" {r['rss_kib'] / 1024:.1f} MiB peak, Prometheus {r['prom_cpu']:.2f} s CPU,"
                f" {r['requests']:.0f} requests, {r['intervals']} firing intervals,"
                f" load average {r['load'][0]:.2f} → {r['load'][1]:.2f}"
                + (f"; {r['summary'][0]}" if r.get("summary") else ""),
                flush=True,
            )
            res[name].append(r)
    if "tripline --reference" in res:
        for a, b in zip(res["tripline"], res["tripline --reference"]):
            if a["report"] != b["report"]:
                raise RuntimeError("the memo's report differs from --reference's")
    computed = {"tripline": want, "vmalert": want_vm, "tripline --reference": want}
    for name, rs in res.items():
        for r in rs:
            if r["intervals"] != computed[name]:
                raise RuntimeError(f"{name}: {r['intervals']} firing intervals, computed {computed[name]}")

    s = Section(
        key="backtest-full" if (days, rules) == (DAYS, RULES) else "backtest",
        title=f"Backtest beside vmalert -replay: {days} days × {rules:,} rules",
        header=[
            "side",
            "wall, median",
            "CPU (user+sys), median",
            "peak RSS, median",
            "Prometheus CPU meanwhile",
            "requests to Prometheus",
            "firing intervals",
        ],
    )
    med = lambda name, k: median([r[k] for r in res[name]])  # noqa: E731
    labels = [("tripline", "`tripline backtest`"), ("vmalert", "`vmalert -replay`")]
    if "tripline --reference" in res:
        labels.insert(1, ("tripline --reference", "`tripline backtest --reference` (no memo)"))
    for name, label in labels:
        s.rows.append(
            [
                label,
                f"{med(name, 'wall'):.2f} s",
                f"{med(name, 'cpu'):.2f} s",
                mib(med(name, "rss_kib")),
                f"{med(name, 'prom_cpu'):.2f} s",
                f"{med(name, 'requests'):,.0f}",
                f"{res[name][0]['intervals']:,} (computed: {computed[name]:,})",
            ]
        )
    s.rows.append(
        [
            "ratio vmalert / tripline",
            ratio(med("vmalert", "wall"), med("tripline", "wall")),
            ratio(med("vmalert", "cpu"), med("tripline", "cpu")),
            ratio(med("vmalert", "rss_kib"), med("tripline", "rss_kib")),
            ratio(med("vmalert", "prom_cpu"), med("tripline", "prom_cpu")),
            ratio(med("vmalert", "requests"), med("tripline", "requests")),
            "",
        ]
    )
    loads = [r["load"][0] for rs in res.values() for r in rs]
    s.notes += [
        f"Load average (1 min) at the start of the runs: {min(loads):.2f}–{max(loads):.2f} on {os.cpu_count()} cores.",
        "Tripline reuses a rule's last evaluation when its input is identical and the rule cannot see"
        " the instant (engine/src/backtest/memo.rs); `--reference` replays without that, and its report"
        " must be equal to the memo's, run for run.",
        f"{ctx.rounds} alternating rounds (the side that goes first rotates each round); {days} days at one"
        f" evaluation a minute = {minutes + 1:,} instants per rule; {QUEUES} series ({QUEUES * (minutes + 1):,}"
        f" samples, backfilled by promtool and served by Debian's Prometheus: {load_secs:.0f} s to generate"
        " and backfill), rule i watches queue i % 10 with threshold 100 + i // 10, so all"
        f" {rules:,} PromQL expressions differ.",
        "Wall and CPU are the replaying process's (wait4), its peak RSS GNU time's %M; Prometheus's CPU and request count"
        " (its `prometheus_http_requests_total` for /api/v1/query*) are what each side cost the server."
        " vmalert's figures exclude the VictoriaMetrics node that stores its `ALERTS` (Tripline writes"
        " nothing anywhere).",
        "vmalert: one group, `interval: 1m`, `-datasource.queryStep=1m`, `-replay.rulesDelay=0`, default"
        " `-replay.maxDatapointsPerQuery=1000` (so ⌈instants / 1,000⌉ `query_range` per rule); Tripline:"
        " one `query_range` per distinct query in chunks of ≤ 11,000 points (Prometheus's limit).",
        "Every run's firing intervals were counted (vmalert: runs of consecutive firing `ALERTS` samples"
        " per series; Tripline: the JSON report's intervals) and equal the count computed from the"
        f" generated data: {want:,} for a replay that keeps each alert's state over the whole range"
        f" (Tripline), {want_vm:,} for vmalert 1.79 (Debian's), which restarts `for` at"
        f" each of its {VMALERT_POINTS:,}-point requests (VictoriaMetrics issue #5186, fixed in 1.95):"
        " an incident that spans a request boundary fires, goes pending for 5 minutes and fires again,"
        " two intervals where the data has one. The computed counts model exactly that, so both sides"
        " are checked instant for instant in effect, not just against each other.",
    ]
    return [s]
