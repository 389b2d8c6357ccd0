"""examples/python-lambda-job against moto's SNS: a Lambda-shaped event and context, the real
AWS SDK inside the engine publishing JOB SUCCEEDED / JOB FAILED with the runbook link."""

from __future__ import annotations

import importlib.util
import json
import uuid
from types import ModuleType
from typing import Any, Dict

import boto3

from conftest import REPO, Moto

EXAMPLE = REPO / "examples" / "python-lambda-job"
ALERTS = "arn:aws:sns:us-east-1:123456789012:admin-directory-lambda-dev-alerts"
SUMMARIES = "arn:aws:sns:us-east-1:123456789012:admin-directory-lambda-dev-job-summaries"
RUNBOOK = "https://runbooks.example.com/lambda-job-alerts#cloudwatch-alerts-and-sns-notifications-for-lambda-jobs"


class LambdaContext:
    """What the Python Lambda runtime passes as `context`."""

    function_name = "admin-directory-lambda-dev"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:admin-directory-lambda-dev"
    memory_limit_in_mb = "512"
    log_group_name = "/aws/lambda/admin-directory-lambda-dev"
    log_stream_name = "2026/11/02/[$LATEST]0123456789abcdef"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 899_000


def scheduled_event(records: Any) -> Dict[str, Any]:
    """An EventBridge scheduled event, as the job's schedule sends it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-02T10:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/admin-directory-nightly"],
        "detail": {"records": records},
    }


def load_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lambda_job_handler", EXAMPLE / "handler.py")
    assert spec and spec.loader
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def topics(moto: Moto) -> None:
    sns = boto3.client("sns", endpoint_url=moto.endpoint, region_name="us-east-1")
    for arn in (ALERTS, SUMMARIES):
        sns.create_topic(Name=arn.rsplit(":", 1)[1])


def test_a_clean_run_publishes_job_succeeded_to_the_summaries_topic(aws_env: Moto) -> None:
    topics(aws_env)
    ctx = LambdaContext()
    out = load_handler().handler(scheduled_event([{"id": 1}, {"id": 2}, {"id": 3}]), ctx)
    assert out["status"] == "succeeded" and out["published"] == 1, out
    assert aws_env.sns_messages(ALERTS) == []
    [sent] = aws_env.sns_messages(SUMMARIES)
    message = json.loads(sent[1])
    text = message["default"]
    assert "JOB SUCCEEDED: admin-directory-lambda-dev processed 3 records" in text
    assert f"Runbook: {RUNBOOK}" in text
    body = json.loads(message["sqs"])
    [alert] = body["alerts"]
    assert alert["labels"]["request_id"] == ctx.aws_request_id
    assert alert["severity"] == "info" and alert["runbook"] == RUNBOOK


def test_a_failed_run_publishes_job_failed_with_the_error_to_the_alerts_topic(aws_env: Moto) -> None:
    topics(aws_env)
    handler = load_handler()
    out = handler.handler(scheduled_event([{"id": 1}, {"name": "no id"}]), LambdaContext())
    assert out["status"] == "failed", out
    assert aws_env.sns_messages(SUMMARIES) == []
    [sent] = aws_env.sns_messages(ALERTS)
    text = json.loads(sent[1])["default"]
    assert "JOB FAILED: admin-directory-lambda-dev" in text
    assert "ValueError: record 1 has no id field" in text
    assert f"Runbook: {RUNBOOK}" in text
    # Each run is announced once: a second failing run is a second message, not a repeat.
    handler.handler(scheduled_event([{}]), LambdaContext())
    assert len(aws_env.sns_messages(ALERTS)) == 2


def test_without_the_topic_the_run_reports_the_delivery_error_and_does_not_raise(aws_env: Moto) -> None:
    out = load_handler().handler(scheduled_event([]), LambdaContext())
    assert out["published"] == 0
    assert out["delivery_errors"] and out["delivery_errors"][0].startswith("job-summaries:")


def test_job_not_run_stays_a_scheduled_rule_of_the_same_config() -> None:
    import tripline

    e = tripline.Engine.from_config(EXAMPLE / "tripline.toml", store=":memory:")
    assert sorted(e.instances) == ["admin-directory-job", "admin-directory-job-not-run"]
