"""Calls the stubs must reject: `scripts/suite/python.sh` expects mypy --strict to fail here,
which shows the examples are checked against real types rather than `Any`."""

import tripline

engine = tripline.Engine.from_config("tripline.toml")
report = engine.run_cycle(at="yesterday")  # an instant is a datetime or epoch seconds
count: int = report.alerts[0].summary  # a summary is text
engine.add_receiver("inbox", 42)  # a receiver is callable
