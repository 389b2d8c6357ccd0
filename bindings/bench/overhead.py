"""The Python side of the bindings' overhead benchmark (see core/examples/overhead.rs)."""

import json
import sys
import time

import tripline

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
engine = tripline.Engine.builder().instance(
    "QueueBacklog", "worker/queue-depth", params={"source": "pushed", "threshold": 1000}
).build()
at = 1_793_786_400.0

started = time.perf_counter()
for i in range(n):
    engine.push_series("queue_depth", 2000.0 if i % 100 == 0 else 10.0, at, labels={"queue": f"q{i}"})
push = time.perf_counter() - started

started = time.perf_counter()
report = engine.run_cycle(at)
alerts = len(report.alerts)
cycle = time.perf_counter() - started
assert alerts == -(-n // 100), alerts
print(json.dumps({"push_ms": push * 1e3, "cycle_ms": cycle * 1e3, "alerts": alerts}))
