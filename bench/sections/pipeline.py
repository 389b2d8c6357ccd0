"""Pipeline throughput and memory: Tripline's daemon against Debian's Alertmanager 0.25, both
taking the same alerts on `POST /api/v2/alerts` and notifying the same webhook sink with the same
routing and grouping.

Per round and side: a fresh server (fresh storage), N alerts posted in batches of BATCH over one
keep-alive connection, then the sink is polled until the notifications it received cover all N
alerts. Alertmanager and Tripline both put every firing alert of a group in each notification of
that group, so coverage is the sum over groups of the largest firing-alert count seen for it."""

from __future__ import annotations

import datetime
import http.client
import json
import os
import time
from pathlib import Path

from .common import (
    Context,
    Section,
    WebhookSink,
    alternate,
    free_port,
    median,
    peak_rss_kib,
    ratio,
    rss_kib,
    start,
    stop,
    wait_http,
)

GROUPS = 100  # N alerts fall into this many groups (alertname is the same for all)
BATCH = 1000  # alerts per POST
GROUP_WAIT, GROUP_INTERVAL, REPEAT_INTERVAL = "1s", "1s", "4h"
TOKEN = "bench-token"
NOTIFY_TIMEOUT = 900.0  # seconds to wait for the sink to be covered before calling it failed
SETTLE = 2.0  # seconds between "all notified" and the active-alert RSS reading


def payloads(n: int) -> list[bytes]:
    """The same POST bodies for both sides. endsAt is two hours away so nothing resolves (nor
    expires in Tripline's ingest) during a run."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    starts = now.isoformat().replace("+00:00", "Z")
    ends = (now + datetime.timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    alerts = [
        {
            "labels": {
                "alertname": "BenchAlert",
                "group": f"g{i % GROUPS:04d}",
                "instance": f"host-{i:07d}",
                "severity": "warning",
            },
            "annotations": {"summary": f"bench alert {i}"},
            "startsAt": starts,
            "endsAt": ends,
            "generatorURL": "http://bench/graph",
        }
        for i in range(n)
    ]
    return [json.dumps(alerts[i : i + BATCH]).encode() for i in range(0, n, BATCH)]


class Coverage:
    """Installed as the sink's `on_message`: tracks how many distinct firing alerts the
    notifications received so far cover, and when they first covered `want`."""

    def __init__(self, want: int) -> None:
        self.want = want
        self.per_group: dict[str, int] = {}
        self.total = 0
        self.done_at: float | None = None

    def __call__(self, msg: dict) -> None:
        key = json.dumps(msg.get("groupLabels", {}), sort_keys=True)
        firing = sum(1 for a in msg.get("alerts", []) if a.get("status") == "firing")
        prev = self.per_group.get(key, 0)
        if firing > prev:
            self.per_group[key] = firing
            self.total += firing - prev
        if self.done_at is None and self.total >= self.want:
            self.done_at = time.monotonic()


def am_config(sink: WebhookSink) -> str:
    return f"""route:
  receiver: sink
  group_by: [alertname, group]
  group_wait: {GROUP_WAIT}
  group_interval: {GROUP_INTERVAL}
  repeat_interval: {REPEAT_INTERVAL}
receivers:
  - name: sink
    webhook_configs:
      - url: {sink.url('/am')}
        send_resolved: false
        max_alerts: 0
"""


def tripline_config(sink: WebhookSink, port: int, db: Path) -> str:
    return f"""stock_rules = false

[server]
listen = "127.0.0.1:{port}"

[store]
type = "sqlite"
path = "{db}"

[route]
receiver = "sink"
group_by = ["alertname", "group"]
group_wait = "{GROUP_WAIT}"
group_interval = "{GROUP_INTERVAL}"
repeat_interval = "{REPEAT_INTERVAL}"

[[receiver]]
type = "webhook"
name = "sink"
url = "{sink.url('/tripline')}"
send_resolved = false
"""


class Side:
    def __init__(self, ctx: Context, sink: WebhookSink, name: str) -> None:
        self.ctx, self.sink, self.name = ctx, sink, name
        self.seq = 0

    def launch(self):
        """Starts a fresh server; returns (process, port, extra headers)."""
        self.seq += 1
        d = self.ctx.tmp / f"pipeline-{self.name}-{self.seq}"
        d.mkdir(parents=True)
        port = free_port()
        if self.name == "alertmanager":
            (d / "am.yml").write_text(am_config(self.sink))
            p = start(
                [
                    self.ctx.alertmanager,
                    f"--config.file={d / 'am.yml'}",
                    f"--storage.path={d / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                d / "log",
            )
            wait_http(f"http://127.0.0.1:{port}/-/ready", proc=p)
            return p, port, {}
        (d / "tripline.toml").write_text(tripline_config(self.sink, port, d / "state.db"))
        env = {**os.environ, "TRIPLINE_API_TOKEN": TOKEN}
        env.setdefault("RUST_LOG", "warn")
        p = start([str(self.ctx.tripline), "run", "--config", str(d / "tripline.toml")], d / "log", env=env)
        wait_http(f"http://127.0.0.1:{port}/health/ready", proc=p)
        return p, port, {"authorization": f"Bearer {TOKEN}"}

    def round(self, n: int, bodies: list[bytes]) -> dict:
        p, port, headers = self.launch()
        try:
            time.sleep(1.0)  # let start-up allocations settle before the idle reading
            idle = rss_kib(p.pid)
            cov = Coverage(n)
            with self.sink.lock:
                self.sink.on_message = cov
            self.sink.reset()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            t0 = time.monotonic()
            for body in bodies:
                conn.request("POST", "/api/v2/alerts", body, {"content-type": "application/json", **headers})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError(f"{self.name}: POST /api/v2/alerts answered {r.status}")
            posted = time.monotonic() - t0
            conn.close()
            deadline = t0 + NOTIFY_TIMEOUT
            while cov.done_at is None:
                if p.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {p.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{self.name}: notifications covered {cov.total} of {n} alerts after {NOTIFY_TIMEOUT:.0f}s"
                    )
                time.sleep(0.01)
            notified = cov.done_at - t0
            time.sleep(SETTLE)
            active = rss_kib(p.pid)
            peak = peak_rss_kib(p.pid)
            return {
                "rate": n / posted,
                "posted": posted,
                "notified": notified,
                "peak": peak,
                "idle": idle,
                "active": active,
                "requests": self.sink.requests,
            }
        finally:
            with self.sink.lock:
                self.sink.on_message = None
            stop(p)


def run(ctx: Context) -> list[Section]:
    sizes = (1_000, 10_000) if ctx.quick else (10_000, 100_000)
    sink = WebhookSink()
    try:
        am, tl = Side(ctx, sink, "alertmanager"), Side(ctx, sink, "tripline")
        results = {}
        for n in sizes:
            bodies = payloads(n)
            a, t = alternate(ctx.rounds, lambda: am.round(n, bodies), lambda: tl.round(n, bodies))
            results[n] = (a, t)
    finally:
        sink.close()

    thr = Section(
        key="pipeline",
        title="Pipeline: Alertmanager's POST /api/v2/alerts to a webhook, against Alertmanager 0.25",
        header=["measure", "alerts", "Tripline", "Alertmanager", "Tripline vs Alertmanager"],
    )
    for n in sizes:
        a, t = results[n]
        m = lambda rs, k: median([r[k] for r in rs])  # noqa: E731
        thr.rows.append(
            [
                "alerts accepted per second",
                f"{n:,}",
                f"{m(t, 'rate'):,.0f}/s",
                f"{m(a, 'rate'):,.0f}/s",
                ratio(m(t, "rate"), m(a, "rate")) + " the rate",
            ]
        )
        thr.rows.append(
            [
                "posting time (first POST → last POST answered)",
                f"{n:,}",
                f"{m(t, 'posted'):.2f} s",
                f"{m(a, 'posted'):.2f} s",
                ratio(m(a, "posted"), m(t, "posted")) + " as fast",
            ]
        )
        thr.rows.append(
            [
                "first POST → all alerts notified",
                f"{n:,}",
                f"{m(t, 'notified'):.2f} s",
                f"{m(a, 'notified'):.2f} s",
                ratio(m(a, "notified"), m(t, "notified")) + " as fast",
            ]
        )
        thr.rows.append(
            [
                "peak RSS (VmHWM)",
                f"{n:,}",
                f"{m(t, 'peak') / 1024:.1f} MiB",
                f"{m(a, 'peak') / 1024:.1f} MiB",
                ratio(m(t, "peak"), m(a, "peak")) + " the memory",
            ]
        )
    thr.notes = [
        f"Medians of {ctx.rounds} round(s) per size, sides alternating (Alertmanager, Tripline, …); each round starts a "
        "fresh server with empty storage.",
        f"N alerts `{{alertname=BenchAlert, group=g0000…g{GROUPS - 1:04d}, instance=host-…, severity=warning}}` "
        f"in {GROUPS} groups, posted {BATCH:,} per POST (identical JSON to both, one keep-alive connection); "
        "startsAt = now, endsAt = now + 2h so nothing resolves or expires during the run.",
        f"Both: route to one webhook receiver, group_by [alertname, group], group_wait {GROUP_WAIT}, "
        f"group_interval {GROUP_INTERVAL}, repeat_interval {REPEAT_INTERVAL}, send_resolved false, no inhibit rules "
        "or silences. Alertmanager: `--cluster.listen-address=` (no clustering), `--storage.path` in a temp dir. "
        "Tripline: `tripline run`, SQLite store in a temp dir, bearer token via TRIPLINE_API_TOKEN.",
        "Accepted per second: N / wall time of all POSTs (each answered 200). \"All notified\": from the first POST "
        "until the notifications received by the sink (a Python HTTP server on loopback, shared) cover all N firing "
        "alerts (per group, the largest firing-alert count seen). Peak RSS: VmHWM of the server process at the end.",
        "Posting time: first POST → last POST answered, recorded per round; the \"all notified\" target compares each"
        " round's notified time with its own posting time + group_wait + 0.5 s, and the table of targets gives the"
        " median over rounds.",
    ]

    big = sizes[-1]
    a, t = results[big]
    per = lambda rs: median([(r["active"] - r["idle"]) * 1024 / big for r in rs])  # noqa: E731
    m = lambda rs, k: median([r[k] for r in rs])  # noqa: E731
    # Issue #15's pipeline targets, at the largest size, from the same rounds.
    gw = float(GROUP_WAIT.rstrip("s"))
    late = median([r["notified"] - r["posted"] - gw for r in t])  # per round, then the median
    thr.targets = [
        [
            f"{big:,} alerts accepted per second ≥ 10× Alertmanager's (issue 15)",
            f"{m(t, 'rate'):,.0f}/s against {m(a, 'rate'):,.0f}/s: {m(t, 'rate') / m(a, 'rate'):.1f}×",
            m(t, "rate") >= 10 * m(a, "rate"),
        ],
        [
            f"{big:,} alerts: first POST → all notified ≤ posting time + group_wait ({GROUP_WAIT}) + 0.5 s (issue 15)",
            f"{m(t, 'notified'):.2f} s, posting {m(t, 'posted'):.2f} s: {late + gw:+.2f} s after the last POST"
            f" (median per round; Alertmanager {m(a, 'notified'):.2f} s, posting {m(a, 'posted'):.2f} s)",
            late <= 0.5,
        ],
        [
            f"peak RSS at {big:,} alerts ≤ Alertmanager's (issue 15)",
            f"{m(t, 'peak') / 1024:.1f} MiB against {m(a, 'peak') / 1024:.1f} MiB",
            m(t, "peak") <= m(a, "peak"),
        ],
        [
            "bytes per active alert ≤ ¼ of Alertmanager's (issue 15)",
            f"{per(t):,.0f} B against {per(a):,.0f} B: {per(t) / per(a):.2f}×",
            per(t) <= per(a) / 4,
        ],
    ]
    mem = Section(
        key="pipeline-memory",
        title="Memory per active alert, against Alertmanager 0.25",
        header=["measure", "Tripline", "Alertmanager", "Tripline vs Alertmanager"],
        rows=[
            [
                "RSS idle",
                f"{median([r['idle'] for r in t]) / 1024:.1f} MiB",
                f"{median([r['idle'] for r in a]) / 1024:.1f} MiB",
                ratio(median([r["idle"] for r in t]), median([r["idle"] for r in a])),
            ],
            [
                f"RSS with {big:,} active alerts",
                f"{median([r['active'] for r in t]) / 1024:.1f} MiB",
                f"{median([r['active'] for r in a]) / 1024:.1f} MiB",
                ratio(median([r["active"] for r in t]), median([r["active"] for r in a])),
            ],
            [
                "bytes per active alert",
                f"{per(t):,.0f} B",
                f"{per(a):,.0f} B",
                ratio(per(t), per(a)) + " the memory",
            ],
        ],
        notes=[
            f"From the {big:,}-alert rounds above: RSS (VmRSS) of the server 1 s after it answered ready (idle), "
            f"and {SETTLE:.0f} s after the sink was covered (all {big:,} alerts active and notified); "
            f"(active − idle) / {big:,}. Medians of {ctx.rounds} round(s).",
            "RSS includes whatever the allocator (glibc malloc for Tripline, Go's runtime for Alertmanager) has not "
            "given back to the OS by then; Tripline's SQLite store is a file, its page cache is not counted.",
        ],
    )
    return [thr, mem]
