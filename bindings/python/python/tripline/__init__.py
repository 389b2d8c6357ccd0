"""Tripline inside a Python host: load a config (or build one in code), push the numbers you
already have, run a cycle at the instant you choose and receive the alerts in Python.

    import tripline
    engine = tripline.Engine.from_config("tripline.toml")
    report = engine.run_cycle()

This mirrors the Rust embedding API (`tripline::Tripline` and its builder). The engine runs in
Rust with the GIL released; Python receivers take the GIL only while they run.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import os
import time
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _native
from ._native import Alert, CycleReport, Notification
from .errors import (
    ConfigError,
    InvalidArgument,
    RuleError,
    SourceError,
    StoreError,
    TriplineError,
)

__all__ = [
    "Alert",
    "Builder",
    "CaseResult",
    "ConfigError",
    "CycleReport",
    "Engine",
    "InvalidArgument",
    "Notification",
    "Receiver",
    "RuleError",
    "SourceError",
    "StoreError",
    "TestReport",
    "TriplineError",
    "test_rules",
]

#: An instant: an aware `datetime` (a naive one is taken as UTC) or seconds since the epoch.
Instant = Union[_dt.datetime, float, int]
#: A receiver: called with each `Notification` (an `async def` is awaited); raising makes the
#: delivery fail and be retried.
Receiver = Callable[[Notification], Any]
#: A path as `str` or `os.PathLike`.
PathLike = Union[str, "os.PathLike[str]"]


def _epoch(t: Any) -> float:
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return float(t.timestamp())
    if isinstance(t, bool):
        raise InvalidArgument(f"not an instant: {t!r}")
    if isinstance(t, (int, float)):
        return float(t)
    if _is_numpy(t):
        # A NumPy datetime64 or number scalar.
        return float(_numpy_epochs(t).reshape(-1)[0])
    raise InvalidArgument(
        f"not an instant: {t!r} (use a datetime or seconds since the epoch)"
    )


def _opt_epoch(t: Optional[Instant]) -> Optional[float]:
    return None if t is None else _epoch(t)


def _is_numpy(x: Any) -> bool:
    return type(x).__module__ == "numpy" and hasattr(x, "dtype")


def _numpy_epochs(x: Any) -> Any:
    import numpy as np

    a = np.asarray(x)
    if a.dtype.kind == "M":
        return a.astype("datetime64[ns]").astype(np.int64) / 1e9
    return a.astype(np.float64)


def _floats(values: Any) -> Union[bytes, List[float]]:
    """Values as float64: a NumPy array's raw bytes (one copy, no Python floats), or a list."""
    if _is_numpy(values):
        import numpy as np

        return np.ascontiguousarray(values, dtype=np.float64).reshape(-1).tobytes()
    if isinstance(values, (bytes, bytearray, memoryview)):
        raise InvalidArgument("pass values as a sequence of numbers or a NumPy array")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"values must be numbers: {e}") from e


def _instants(ts: Any) -> Union[bytes, List[float]]:
    if _is_numpy(ts):
        import numpy as np

        return np.ascontiguousarray(_numpy_epochs(ts), dtype=np.float64).reshape(-1).tobytes()
    return [_epoch(t) for t in ts]


def _duration_secs(d: Union[str, float, int, _dt.timedelta]) -> float:
    if isinstance(d, _dt.timedelta):
        return d.total_seconds()
    if isinstance(d, (int, float)):
        return float(d)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    s = d.strip()
    for u in sorted(units, key=len, reverse=True):
        if s.endswith(u) and s[: -len(u)].replace(".", "", 1).isdigit():
            return float(s[: -len(u)]) * units[u]
    raise InvalidArgument(f"duration {d!r}: use a timedelta, seconds, or text like '90s', '2h'")


@dataclass(frozen=True)
class CaseResult:
    """One rule fixture case."""

    file: str
    rule: str
    name: str
    #: What went wrong (expected vs got); `None` when it passed.
    failure: Optional[str]

    @property
    def passed(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class TestReport:
    """Every case `test_rules` ran."""

    __test__ = False  # not a pytest test class

    cases: List[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed

    def __repr__(self) -> str:
        return f"<TestReport {self.passed} passed, {self.failed} failed>"


def test_rules(paths: Union[PathLike, Sequence[PathLike]]) -> TestReport:
    """Runs the rule fixture cases (`*.test.toml`) under `paths`, as `tripline test` does."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    cases = _native.test_rules([os.fspath(p) for p in paths])
    return TestReport([CaseResult(*c) for c in cases])


test_rules.__test__ = False  # type: ignore[attr-defined]


def _raise_failures(report: CycleReport) -> None:
    err: Optional[TriplineError] = None
    if report.source_failures:
        err = SourceError(
            "sources failed: " + "; ".join(f"{i}: {m}" for i, m in report.source_failures)
        )
    elif report.rule_failures:
        err = RuleError("rules failed: " + "; ".join(f"{i}: {m}" for i, m in report.rule_failures))
    if err is not None:
        err.report = report  # type: ignore[attr-defined]
        raise err


class Engine:
    """A Tripline engine: rule instances, sources, store and receivers.

    Build one with `Engine.from_config(path)` or `Engine.builder()...build()`.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Engine) -> None:
        self._native = native

    @classmethod
    def from_config(
        cls,
        path: PathLike,
        *,
        store: Optional[str] = None,
        receivers: Optional[Mapping[str, Receiver]] = None,
    ) -> "Engine":
        """Loads a `tripline.toml` with the stock rules and its `rules_dirs`.

        `store` overrides the config's `[store]` (a SQLite path, or ":memory:"). `receivers`
        adds Python receivers by name next to the configured ones; routes may name them.
        Raises `ConfigError` (with `path`, `line`, `column`) or `RuleError`.
        """
        return cls(
            _native.Engine.from_config(os.fspath(path), store, dict(receivers or {}))
        )

    @staticmethod
    def builder() -> "Builder":
        """A builder for an engine described in code."""
        return Builder()

    @property
    def instances(self) -> List[str]:
        """Rule instance names."""
        return self._native.instances()

    @property
    def receivers(self) -> List[str]:
        """Receiver names, configured and added."""
        return self._native.receivers()

    def add_receiver(self, name: str, receiver: Receiver) -> None:
        """Adds a Python receiver: `receiver(notification)` is called for each notification
        routed to `name` (every alert, when the config has no `[route]`). An exception fails the
        delivery, which is kept in the outbox and retried. An `async def` receiver is awaited
        (on a worker thread of its own, not the host's event loop). Add receivers before the
        first cycle.
        """
        self._native.add_receiver(name, receiver)

    def push_series(
        self,
        name: str,
        values: Any,
        timestamps: Any = None,
        *,
        labels: Optional[Mapping[str, str]] = None,
        period: int = 60,
    ) -> None:
        """Pushes a series, read by rules with `pushed(name)`.

        `values` is a number, a sequence of numbers or a NumPy array; `timestamps` the matching
        instants (datetimes, epoch seconds, or a NumPy datetime64/number array). A single value
        without a timestamp is taken at now; a sequence without timestamps ends now, one point
        per `period` seconds. Without `labels` the name is this one series; with labels the
        series joins the name's set (one per label set, as a Prometheus vector).
        """
        if isinstance(values, (int, float)) and not isinstance(values, bool):
            values = [values]
            if timestamps is not None and not isinstance(timestamps, (list, tuple)) and not _is_numpy(timestamps):
                timestamps = [timestamps]
        vs = _floats(values)
        if timestamps is None:
            n = len(vs) // 8 if isinstance(vs, bytes) else len(vs)
            end = time.time()
            ts: Union[bytes, List[float]] = [end - (n - 1 - i) * period for i in range(n)]
        else:
            ts = _instants(timestamps)
        self._native.push_series(name, ts, vs, dict(labels) if labels else None, period)

    def push_table(self, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Pushes rows (a log-query or SQL result), read by rules with `pushed(name)`."""
        self._native.push_table(name, [dict(r) for r in rows])

    def clear_pushed(self) -> None:
        """Forgets everything pushed: each name reads as an empty series again."""
        self._native.clear_pushed()

    def run_cycle(
        self,
        at: Optional[Instant] = None,
        *,
        instances: Optional[Sequence[str]] = None,
        raise_on_failure: bool = False,
    ) -> CycleReport:
        """Runs one cycle at `at` (now by default) over `instances` (all by default):
        evaluates, moves alerts through pending/firing/resolved, notifies and delivers.
        The GIL is released while it runs.

        A rule that fails or a source that cannot be read is an error state, raised as a
        rule-error or source-error alert like any other, and listed in the report. With
        `raise_on_failure` the cycle still completes (and notifies), then raises `SourceError`
        or `RuleError` naming the failing instances; the report is the exception's `report`.
        """
        report = self._native.run_cycle(
            _opt_epoch(at), list(instances) if instances is not None else None
        )
        if raise_on_failure:
            _raise_failures(report)
        return report

    async def run_cycle_async(
        self,
        at: Optional[Instant] = None,
        *,
        instances: Optional[Sequence[str]] = None,
        raise_on_failure: bool = False,
    ) -> CycleReport:
        """`run_cycle` for asyncio hosts: runs in the loop's default executor, so the loop keeps
        serving other tasks meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None,
            functools.partial(
                self.run_cycle, at, instances=instances, raise_on_failure=raise_on_failure
            ),
        )

    def deliver(self, at: Optional[Instant] = None) -> List[str]:
        """The notification half of a cycle: group timers, escalations, retries of failed
        deliveries. Returns the outbox ids delivered."""
        return self._native.deliver(_opt_epoch(at))

    def alerts(self) -> List[Alert]:
        """Alerts in the store: pending, firing, and recently resolved."""
        return self._native.alerts()

    def add_silence(
        self,
        matchers: Sequence[str],
        *,
        duration: Union[str, float, _dt.timedelta, None] = None,
        ends_at: Optional[Instant] = None,
        starts_at: Optional[Instant] = None,
        created_by: str = "unknown",
        comment: str = "",
    ) -> str:
        """Mutes alerts matching every matcher (`team=db`, `function=~prd-.*`, `env!=dev`)
        from `starts_at` (now) for `duration` (1h) or until `ends_at`. Returns its id."""
        start = _opt_epoch(starts_at)
        if ends_at is not None:
            end = _epoch(ends_at)
        else:
            base = start if start is not None else time.time()
            end = base + _duration_secs(duration if duration is not None else "1h")
        return self._native.add_silence(list(matchers), end, start, created_by, comment)

    def silences(self, *, all: bool = False, at: Optional[Instant] = None) -> List[Dict[str, Any]]:
        """Active and pending silences at `at` (now); `all=True` adds expired ones."""
        return self._native.silences(all, _opt_epoch(at))

    def expire_silence(self, silence_id: str, at: Optional[Instant] = None) -> bool:
        """Ends a silence at `at` (now); False when there was no such silence active then."""
        return self._native.expire_silence(silence_id, _opt_epoch(at))

    def ack(self, fingerprint: str, by: str, at: Optional[Instant] = None) -> List[str]:
        """Acknowledges a firing alert (as `tripline ack`): its escalation stops and receivers
        that track incidents are told now. Returns the receivers told."""
        return self._native.ack(fingerprint, by, _opt_epoch(at))

    def __repr__(self) -> str:
        return f"<tripline.Engine instances={self.instances} receivers={self.receivers}>"


class Builder:
    """Describes an engine in code (the config file's settings, as calls)."""

    def __init__(self) -> None:
        self._rules_dirs: List[str] = []
        self._stock_rules = True
        self._rule_sources: List[Tuple[str, str]] = []
        self._store: Optional[str] = None
        self._sources: List[Tuple[str, Dict[str, Any]]] = []
        self._aws: Optional[Dict[str, Any]] = None
        self._instances: List[Dict[str, Any]] = []
        self._receivers: Dict[str, Receiver] = {}

    def rules_dir(self, path: PathLike) -> "Builder":
        """A directory of your own `*.rhai` rules."""
        self._rules_dirs.append(os.fspath(path))
        return self

    def stock_rules(self, enabled: bool) -> "Builder":
        """Whether the stock rules shipped with Tripline can be used (default True)."""
        self._stock_rules = enabled
        return self

    def rule_source(self, origin: str, text: str) -> "Builder":
        """A rule given as source text; `origin` names it in errors."""
        self._rule_sources.append((origin, text))
        return self

    def store(self, path: str) -> "Builder":
        """A SQLite file for alert state, silences and the outbox ("" or ":memory:" keeps them
        in memory, the default)."""
        self._store = path or ":memory:"
        return self

    def source(self, kind: str, settings: Mapping[str, Any]) -> "Builder":
        """A source for `kind` queries, as a `[sources.<kind>]` table:
        `source("prometheus", {"type": "prometheus", "url": "http://..."})`."""
        self._sources.append((kind, dict(settings)))
        return self

    def aws(self, settings: Mapping[str, Any]) -> "Builder":
        """The `[aws]` table (region, endpoint_url) for CloudWatch and logs sources."""
        self._aws = dict(settings)
        return self

    def instance(
        self,
        name: str,
        rule: str,
        *,
        params: Optional[Mapping[str, Any]] = None,
        labels: Optional[Mapping[str, str]] = None,
        every: Optional[str] = None,
        for_: Optional[str] = None,
        keep_firing_for: Optional[str] = None,
        severity: Optional[str] = None,
        runbook: Optional[str] = None,
    ) -> "Builder":
        """A use of rule `rule` (its id) named `name`, as a config's `[[rule]]`."""
        self._instances.append(
            {
                "name": name,
                "rule": rule,
                "params": dict(params or {}),
                "labels": dict(labels or {}),
                "every": every,
                "for": for_,
                "keep_firing_for": keep_firing_for,
                "severity": severity,
                "runbook": runbook,
            }
        )
        return self

    def receiver(self, name: str, receiver: Receiver) -> "Builder":
        """A Python receiver; without routing every alert goes to every receiver."""
        self._receivers[name] = receiver
        return self

    def build(self) -> Engine:
        """Builds the engine; raises `RuleError` or `ConfigError` for what does not load."""
        return Engine(
            _native.Engine.build(
                self._rules_dirs,
                self._stock_rules,
                self._rule_sources,
                self._store,
                self._sources,
                self._aws,
                self._instances,
                self._receivers,
            )
        )
