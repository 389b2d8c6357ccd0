"""What every benchmark section shares: the run context, the result table, process handling
(start on loopback, measure RSS from /proc, always stop), a webhook sink, and statistics.

Every process started through `start()` is registered and killed by `stop_all()`, which the runner
calls on exit (also on Ctrl-C), so a benchmark never leaves anything running."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Context:
    repo: Path
    tmp: Path
    tripline: Path  # release `tripline` binary
    bench: Path  # release `tripline-bench` binary (Tripline-side measurements)
    prometheus: str  # Debian's prometheus binary
    promtool: str
    alertmanager: str  # Debian's prometheus-alertmanager binary
    moto: str | None  # moto_server executable, when installed
    rounds: int  # alternating rounds per comparison
    quick: bool  # smaller sizes, for a smoke run
    only: tuple = ()  # the sections named by --only (empty: the whole run)


@dataclass
class Section:
    key: str  # stable id, e.g. "rule-eval"
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Rows for the "Against the targets" table: [target, measured, met (True, False or None: not
    # measured)], from this section's own figures.
    targets: list[list] = field(default_factory=list)
    # Which run the figures come from (command, date, rounds, load); set by the runner.
    run_line: str = ""

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        if self.run_line:
            out += [self.run_line, ""]
        out.append("| " + " | ".join(self.header) + " |")
        out.append("|" + "---|" * len(self.header))
        for r in self.rows:
            out.append("| " + " | ".join(str(c) for c in r) + " |")
        if self.notes:
            out.append("")
            out.extend(f"- {n}" for n in self.notes)
        return "\n".join(out) + "\n"

    def text(self) -> str:
        widths = [max(len(str(r[i])) for r in [self.header, *self.rows]) for i in range(len(self.header))]
        line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))
        return "\n".join([self.title, line(self.header), *(line(r) for r in self.rows)]) + "\n"


# ---- processes ------------------------------------------------------------------------------

_procs: list[subprocess.Popen] = []


def start(cmd: list[str], log: Path, **kw) -> subprocess.Popen:
    """Starts `cmd` in its own process group with stdout+stderr to `log`; registered for stop_all."""
    f = open(log, "ab")
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, **kw)
    _procs.append(p)
    return p


def stop(p: subprocess.Popen, timeout: float = 10) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    if p in _procs:
        _procs.remove(p)


def stop_all() -> None:
    for p in list(_procs):
        stop(p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
    """Polls `url` until it answers 2xx; fails early if `proc` exits."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if 200 <= r.status < 300:
                    return
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last = e
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def rss_kib(pid: int) -> int:
    """Resident set size now."""
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """Peak resident set size (high-water mark) of a running process."""
    return _status_kib(pid, "VmHWM")


def http_json(method: str, url: str, body=None, timeout: float = 60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


# ---- loopback HTTP servers ------------------------------------------------------------------


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    """Serves `handler` on a free loopback port from a daemon thread, a thread per request.
    Stop it with `.shutdown()` and `.server_close()`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---- a webhook receiver both peers post to --------------------------------------------------


class WebhookSink:
    """A threaded loopback HTTP server that answers 200 to every POST and records, per request,
    the arrival time and the number of alerts in the body (Alertmanager's and Tripline's webhook
    payloads both carry an `alerts` array)."""

    def __init__(self) -> None:
        sink = self
        self.lock = threading.Lock()
        self.requests = 0
        self.alerts = 0
        self.first: float | None = None
        self.last: float | None = None
        # Called with each parsed body, under `lock` (a section that needs more than counts).
        self.on_message = None

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                n = int(self.headers.get("content-length", 0))
                body = self.rfile.read(n)
                try:
                    msg = json.loads(body)
                    count = len(msg.get("alerts", []))
                except Exception:  # noqa: BLE001
                    msg, count = None, 0
                now = time.monotonic()
                with sink.lock:
                    sink.requests += 1
                    sink.alerts += count
                    sink.first = sink.first or now
                    sink.last = now
                    if msg is not None and sink.on_message is not None:
                        sink.on_message(msg)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = serve(Handler)
        self.port = self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self) -> None:
        with self.lock:
            self.requests = self.alerts = 0
            self.first = self.last = None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- statistics -----------------------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def percentile(xs: list[float], p: float) -> float:
    """Nearest-rank percentile, p in [0, 100]."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def alternate(rounds: int, *sides):
    """Runs each side's callable once per round, alternating A, B, A, B… so drift on the machine
    hits both alike. Returns one list of results per side."""
    out = [[] for _ in sides]
    for _ in range(rounds):
        for i, fn in enumerate(sides):
            out[i].append(fn())
    return out


def ratio(a: float, b: float) -> str:
    """`a` relative to `b`, as "N.N×"."""
    if b == 0:
        return "n/a"
    return f"{a / b:.1f}×"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"
