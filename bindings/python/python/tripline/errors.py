"""Errors raised by Tripline: every one is a `TriplineError`, of the subclass of its kind.

An error found at a place in a file (a config key, a rule's line) carries `path`, `line` and
`column` of the first problem; `errors` lists each problem when there were several, and an I/O
failure underneath is the exception's `__cause__`.
"""

from __future__ import annotations

from typing import List, Optional

__all__ = [
    "TriplineError",
    "ConfigError",
    "RuleError",
    "SourceError",
    "StoreError",
    "InvalidArgument",
]


class TriplineError(Exception):
    """Anything Tripline refuses or fails at."""

    #: A stable code: ERR_TRIPLINE_CONFIG, _RULE, _SOURCE, _STORE, _VALUE or _STATE.
    code: str = "ERR_TRIPLINE_STATE"
    #: The file of the (first) problem, when it has one.
    path: Optional[str] = None
    #: 1-based line of the problem in `path`.
    line: Optional[int] = None
    #: 1-based column of the problem in `path`.
    column: Optional[int] = None
    #: Each problem when several were found at once (else empty).
    errors: List["TriplineError"]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.errors = []

    def __str__(self) -> str:
        return self.message


class ConfigError(TriplineError):
    """A config file, or the builder's settings, is invalid (`path:line:col` when located)."""

    code = "ERR_TRIPLINE_CONFIG"


class RuleError(TriplineError):
    """A rule does not load (its `.rhai` file and position), or is used wrongly."""

    code = "ERR_TRIPLINE_RULE"


class SourceError(TriplineError):
    """A data source could not be set up or failed."""

    code = "ERR_TRIPLINE_SOURCE"


class StoreError(TriplineError):
    """The alert store failed."""

    code = "ERR_TRIPLINE_STORE"


class InvalidArgument(TriplineError, ValueError):
    """A value passed to Tripline is out of range or of the wrong shape."""

    code = "ERR_TRIPLINE_VALUE"
