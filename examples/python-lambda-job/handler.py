"""A scheduled Python Lambda job that reports its own outcome through Tripline (runbook 002).

The handler runs the job, pushes one row describing the run (status, records, duration, error)
and evaluates the `job/outcome` rule: Tripline's SNS receivers publish JOB SUCCEEDED to the
summaries topic or JOB FAILED, with the error and the runbook link, to the alerts topic. The job's
own exception is caught and reported rather than raised, as the runbook's try/except handler
does; JOB NOT RUN stays a scheduled CloudWatch rule (see tripline.toml).
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List

import tripline

CONFIG = os.environ.get(
    "TRIPLINE_CONFIG", os.path.join(os.path.dirname(os.path.abspath(__file__)), "tripline.toml")
)
INSTANCE = "admin-directory-job"


def run_job(event: Dict[str, Any]) -> int:
    """The job itself: uploads the event's records; a record without an id is a logical error."""
    records: List[Dict[str, Any]] = event.get("detail", {}).get("records", [])
    for i, r in enumerate(records):
        if "id" not in r:
            raise ValueError(f"record {i} has no id field (upload to admin_directory.users)")
    return len(records)


def handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    started = time.monotonic()
    outcome: Dict[str, Any] = {"request_id": context.aws_request_id, "records": 0}
    try:
        outcome["records"] = run_job(event)
        outcome["status"] = "succeeded"
    except Exception as e:  # report programmatic and logical errors, as runbook 002 (b), (c)
        outcome["status"] = "failed"
        outcome["error"] = f"{type(e).__name__}: {e}"
    outcome["duration_s"] = round(time.monotonic() - started, 3)
    outcome["remaining_ms"] = context.get_remaining_time_in_millis()

    # One engine per run, state in memory: each run is announced exactly once.
    engine = tripline.Engine.from_config(CONFIG, store=":memory:")
    engine.push_table("job_outcome", [outcome])
    report = engine.run_cycle(instances=[INSTANCE])
    return {
        "status": outcome["status"],
        "alerts": [a.summary for a in report.firing],
        "published": len(report.delivered),
        "delivery_errors": [f"{r}: {m}" for r, m in report.delivery_errors],
    }
