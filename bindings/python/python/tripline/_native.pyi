"""Type stubs of the `tripline._native` extension module (the Rust half of `tripline`)."""

import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

class Alert:
    """One alert: its state, severity, labels, summary, runbook, value and instants."""

    @property
    def fingerprint(self) -> str: ...
    @property
    def rule(self) -> str:
        """The rule id (`worker/queue-depth`)."""
    @property
    def instance(self) -> str:
        """The rule instance that raised it."""
    @property
    def name(self) -> str:
        """Its `alertname` label."""
    @property
    def state(self) -> str:
        """"pending", "firing" or "resolved"."""
    @property
    def severity(self) -> str: ...
    @property
    def labels(self) -> Dict[str, str]: ...
    @property
    def summary(self) -> str: ...
    @property
    def runbook(self) -> Optional[str]: ...
    @property
    def value(self) -> Optional[float]: ...
    @property
    def details(self) -> Dict[str, Any]: ...
    @property
    def starts_at(self) -> Optional[datetime.datetime]:
        """When it started firing (None while pending)."""
    @property
    def active_since(self) -> datetime.datetime: ...
    @property
    def ends_at(self) -> Optional[datetime.datetime]: ...

class Notification:
    """One message to one receiver: a group of alerts sharing its group labels."""

    @property
    def id(self) -> str: ...
    @property
    def receiver(self) -> str: ...
    @property
    def status(self) -> str:
        """"firing", "resolved" or "acknowledged"."""
    @property
    def group_labels(self) -> Dict[str, str]: ...
    @property
    def alerts(self) -> List[Alert]: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def acknowledged_by(self) -> Optional[str]: ...
    def to_json(self) -> str: ...

class CycleReport:
    """What one cycle did."""

    @property
    def at(self) -> Optional[datetime.datetime]: ...
    @property
    def alerts(self) -> List[Alert]:
        """Pending and firing alerts after the cycle, plus the ones resolved in it."""
    @property
    def firing(self) -> List[Alert]: ...
    @property
    def instances_evaluated(self) -> int: ...
    @property
    def notifications(self) -> List[Notification]: ...
    @property
    def delivered(self) -> List[str]: ...
    @property
    def delivery_errors(self) -> List[Tuple[str, str]]: ...
    @property
    def rule_failures(self) -> List[Tuple[str, str]]: ...
    @property
    def source_failures(self) -> List[Tuple[str, str]]: ...

_Floats = Union[bytes, Sequence[float]]

class Engine:
    @staticmethod
    def from_config(
        path: str,
        store: Optional[str] = None,
        receivers: Optional[Mapping[str, Callable[[Notification], Any]]] = None,
    ) -> "Engine": ...
    @staticmethod
    def build(
        rules_dirs: List[str],
        stock_rules: bool,
        rule_sources: List[Tuple[str, str]],
        store: Optional[str],
        sources: List[Tuple[str, Dict[str, Any]]],
        aws: Optional[Dict[str, Any]],
        instances: List[Dict[str, Any]],
        receivers: Optional[Mapping[str, Callable[[Notification], Any]]],
    ) -> "Engine": ...
    def add_receiver(self, name: str, callable: Callable[[Notification], Any]) -> None: ...
    def instances(self) -> List[str]: ...
    def receivers(self) -> List[str]: ...
    def push_series(
        self,
        name: str,
        timestamps: _Floats,
        values: _Floats,
        labels: Optional[Dict[str, str]] = None,
        period: int = 60,
    ) -> None: ...
    def push_table(self, name: str, rows: List[Dict[str, Any]]) -> None: ...
    def clear_pushed(self) -> None: ...
    def run_cycle(
        self, at: Optional[float] = None, instances: Optional[List[str]] = None
    ) -> CycleReport: ...
    def deliver(self, at: Optional[float] = None) -> List[str]: ...
    def alerts(self) -> List[Alert]: ...
    def add_silence(
        self,
        matchers: List[str],
        ends_at: float,
        starts_at: Optional[float] = None,
        created_by: str = "unknown",
        comment: str = "",
    ) -> str: ...
    def silences(self, all: bool = False, at: Optional[float] = None) -> List[Dict[str, Any]]: ...
    def expire_silence(self, id: str, at: Optional[float] = None) -> bool: ...
    def ack(self, fingerprint: str, by: str, at: Optional[float] = None) -> List[str]: ...

def test_rules(paths: List[str]) -> List[Tuple[str, str, str, Optional[str]]]: ...
