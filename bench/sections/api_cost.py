"""API cost: GetMetricData calls per cycle for N CloudWatch rule instances, counted on the wire
against a local moto server, beside what the same watching costs as per-rule CloudWatch alarms or
per-rule polling, and the monthly GetMetricData bill.

`tripline-bench api-cost` does the measuring (see bench/src/api_cost.rs): it seeds moto with one
`AWS/Lambda Errors` datapoint per function, runs one cycle of N `aws/lambda-errors` instances (one
metric query each) through a loopback proxy that counts HTTP requests by their `Action`, and
checks that exactly the seeded tenth of the instances fired."""

from __future__ import annotations

import json
import math
import subprocess

from .common import Context, Section, free_port, http_json, start, stop, wait_http

# CloudWatch list prices, us-east-1 (aws.amazon.com/cloudwatch/pricing, as of 2025; re-check
# before quoting). Free tier ignored: its 1M API requests do not cover GetMetricData anyway.
PRICE_PER_1000_METRICS = 0.01  # GetMetricData, per 1,000 metrics requested
PRICE_PER_ALARM_MONTH = 0.10  # standard-resolution metric alarm, per alarm per month
CYCLES_PER_MONTH = 43_200  # a 1-minute schedule over 30 days
QUERIES_PER_CALL = 500
GMD_TPS_QUOTA = 50  # default GetMetricData requests per second per account and region


def usd(x: float) -> str:
    return f"${x:,.2f}"


def measure(ctx: Context, endpoint: str, n: int) -> dict:
    out = subprocess.run(
        [str(ctx.bench), "api-cost", "--endpoint", endpoint, "--instances", str(n)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tripline-bench api-cost --instances {n}: {out.stderr.strip() or out.stdout}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> list[Section]:
    if not ctx.moto:
        raise RuntimeError(
            "TRIPLINE_MOTO_SERVER is not set: `source scripts/lib/moto.sh; install_test_deps_moto` first"
        )
    sizes = [100, 1_000] if ctx.quick else [100, 1_000, 10_000]
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = start([ctx.moto, "-H", "127.0.0.1", "-p", str(port)], ctx.tmp / "moto-api-cost.log")
    results = []
    try:
        wait_http(f"{endpoint}/moto-api/data.json", proc=moto)
        for n in sizes:
            # A fresh account per size: the previous size's metrics would only slow moto down.
            http_json("POST", f"{endpoint}/moto-api/reset")
            r = measure(ctx, endpoint, n)
            print(f"   {n} instances: {json.dumps(r)}", flush=True)
            results.append(r)
    finally:
        stop(moto)

    s = Section(
        key="api-cost",
        title="API cost: GetMetricData calls per cycle (moto, counted on the wire)",
        header=[
            "instances",
            "distinct metric queries",
            "GetMetricData calls / cycle",
            "limit ⌈distinct/500⌉",
            "calls / limit",
            "alerts fired (expected)",
            "per-rule alarms: count, $/month",
            "per-rule polling: calls / cycle (calls/s)",
            "GetMetricData $/month, 1-min schedule",
        ],
    )
    for r in results:
        n, distinct, calls = r["instances"], r["distinct_queries"], r["get_metric_data_calls"]
        limit = math.ceil(distinct / QUERIES_PER_CALL)
        assert limit == r["limit"], r
        bill = distinct * CYCLES_PER_MONTH / 1000 * PRICE_PER_1000_METRICS
        s.rows.append(
            [
                f"{n:,}",
                f"{distinct:,}",
                f"{calls:,}",
                f"{limit:,}",
                f"{calls / limit:.2f}",
                f"{r['alerts_fired']:,} ({r['alerts_expected']:,})",
                f"{n:,}, {usd(n * PRICE_PER_ALARM_MONTH)}",
                f"{n:,} ({n / 60:,.1f}/s)",
                usd(bill),
            ]
        )
    at_limit = [
        r["get_metric_data_calls"] == math.ceil(r["distinct_queries"] / QUERIES_PER_CALL) for r in results
    ]
    s.targets = [
        [
            "GetMetricData calls exactly at ⌈N/500⌉ at every size (issue 7)",
            ", ".join(f"{r['get_metric_data_calls']:,}" for r in results)
            + " calls for "
            + ", ".join(f"{r['instances']:,}" for r in results)
            + " instances",
            all(at_limit),
        ]
    ]
    s.notes += [
        "Rule: N instances of the stock `aws/lambda-errors` (one `AWS/Lambda Errors` Sum query over"
        " the last complete 5-minute period, each on its own function); moto is seeded with one"
        " datapoint per function, 25 errors on every tenth and 1 on the others, so exactly a tenth"
        " must fire (threshold 10): the alerts column shows the rules saw the data.",
        "Calls are counted on the wire: the engine's CloudWatch client talks to moto through a"
        " loopback proxy in `tripline-bench` that counts HTTP requests by their `Action` ("
        + "; ".join(f"{r['instances']:,}: {json.dumps(r['requests_by_action'])}" for r in results)
        + "); the engine's own interceptor count (every request its CloudWatch client transmitted) was "
        + ", ".join(str(r["engine_counted_requests"]) for r in results)
        + ". Seeding (PutMetricData, 1,000 datums per call) goes straight to moto and is not counted.",
        f"Prices: CloudWatch list prices for us-east-1 as published on aws.amazon.com/cloudwatch/pricing"
        f" (2025; not re-checked on the day of this run): GetMetricData ${PRICE_PER_1000_METRICS} per"
        f" 1,000 metrics requested; a standard-resolution metric alarm ${PRICE_PER_ALARM_MONTH:.2f} per"
        f" month. Free tier ignored (its 1M API requests do not apply to GetMetricData). A month is"
        f" {CYCLES_PER_MONTH:,} one-minute cycles (30 days).",
        "Batching cuts requests, not money: AWS bills GetMetricData per metric requested, so one"
        " GetMetricData call per rule per minute (per-rule polling) costs exactly the same dollars as"
        " the batched calls; what batching saves is requests and throttling headroom (per-rule"
        f" polling of 10,000 rules needs ≈167 calls/s against the default {GMD_TPS_QUOTA}/s"
        " GetMetricData quota; batched, 20 calls a minute).",
        "At a 1-minute schedule, polling a metric costs $0.432/month, 4.3× a $0.10 alarm on it; at"
        " a 5-minute schedule $0.0864 (0.86×). `aws/lambda-errors` defaults to `every` minute over a"
        " 5-minute period, so each datapoint is fetched five times: scheduling a rule at its period"
        " (`every` on the instance) cuts its bill 5×. Alarms cannot run Tripline's triage, grouping"
        " or multi-metric rules; the comparison is only about the metric reads.",
    ]
    return [s]
