"""Every call of the `tripline` Python API against the real engine."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import json
import threading
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import numpy as np
import pytest

import tripline
from conftest import DEPTH_RULE, REPO

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 2, 10, 0, tzinfo=UTC)

SET_RULE = r"""
const RULE = #{ id: "host/backlog", severity: "warning", params: #{ threshold: 100 } };
fn query(p) { #{ backlog: pushed("backlog") } }
fn evaluate(d, p) {
    for s in d.backlog {
        let v = s.last();
        if v != () && v > p.threshold {
            fire(#{ summary: `${s.labels.queue} backlog ${fmt_number(v)}`, value: v,
                    labels: #{ queue: s.labels.queue } });
        }
    }
}
"""

TABLE_RULE = r"""
const RULE = #{ id: "host/failed-rows", severity: "high", params: #{} };
fn query(p) { #{ runs: pushed("runs") } }
fn evaluate(d, p) {
    if type_of(d.runs) != "Table" { return; }
    for r in d.runs.rows {
        if r.status == "failed" {
            fire(#{ summary: `run ${r.id} failed: ${r.error}`, labels: #{ run: r.id } });
        }
    }
}
"""


def depth_engine(**receivers: Any) -> tripline.Engine:
    b = (
        tripline.Engine.builder()
        .stock_rules(False)
        .rule_source("host/depth.rhai", DEPTH_RULE)
        .instance("email-depth", "host/depth", params={"threshold": 100}, labels={"team": "mail"})
    )
    for name, r in receivers.items():
        b = b.receiver(name, r)
    return b.build()


# --- building ---------------------------------------------------------------------------------


def test_a_built_engine_fires_with_state_severity_labels_runbook_value_and_start() -> None:
    e = depth_engine()
    assert e.instances == ["email-depth"]
    e.push_series("depth", [250.0], [T0])
    r = e.run_cycle(T0)
    assert r.instances_evaluated == 1
    [a] = r.alerts
    assert (a.state, a.severity, a.summary, a.value) == ("firing", "warning", "depth 250", 250.0)
    assert a.labels == {"alertname": "email-depth", "queue": "emails", "team": "mail"}
    assert a.runbook == "https://runbooks.example.com/host#depth"
    assert a.starts_at == T0 and a.active_since == T0 and a.ends_at is None
    assert a.rule == "host/depth" and a.instance == "email-depth" and a.name == "email-depth"
    assert r.firing[0].fingerprint == a.fingerprint
    assert r.at == T0
    text = repr(a)
    assert "firing" in text and "warning" in text and "'depth 250'" not in text
    assert '"depth 250"' in text and "value=250" in text
    assert "alerts=1 firing=1" in repr(r)


def test_below_the_threshold_nothing_fires() -> None:
    e = depth_engine()
    e.push_series("depth", 20, T0)
    assert e.run_cycle(T0).alerts == []


def test_for_makes_an_alert_pending_first_then_firing(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "depth.rhai").write_text(DEPTH_RULE)
    (tmp_path / "t.toml").write_text(
        'rules_dirs = ["rules"]\nstock_rules = false\n\n'
        '[[rule]]\nname = "d"\nuse = "host/depth"\nfor = "2m"\nkeep_firing_for = "5m"\n'
    )
    e = tripline.Engine.from_config(tmp_path / "t.toml")
    e.push_series("depth", 500, T0)
    assert [a.state for a in e.run_cycle(T0).alerts] == ["pending"]
    assert e.run_cycle(T0 + dt.timedelta(minutes=1)).alerts[0].starts_at is None
    e.push_series("depth", 500, T0 + dt.timedelta(minutes=2))
    r = e.run_cycle(T0 + dt.timedelta(minutes=2))
    assert [a.state for a in r.alerts] == ["firing"]
    # keep_firing_for: the condition gone, it still fires for 5 minutes.
    e.push_series("depth", 1, T0 + dt.timedelta(minutes=3))
    assert [a.state for a in e.run_cycle(T0 + dt.timedelta(minutes=3)).alerts] == ["firing"]
    e.push_series("depth", 1, T0 + dt.timedelta(minutes=9))
    assert [a.state for a in e.run_cycle(T0 + dt.timedelta(minutes=9)).alerts] == ["resolved"]


def test_builder_settings_for_keep_firing_severity_runbook_every_and_a_sqlite_store(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    build = lambda: (  # noqa: E731
        tripline.Engine.builder()
        .stock_rules(False)
        .rule_source("host/depth.rhai", DEPTH_RULE)
        .store(str(db))
        .instance(
            "d", "host/depth", for_="1m", keep_firing_for="1m", severity="critical",
            runbook="https://wiki/depth", every="0 * * * * *",
        )
        .build()
    )
    e = build()
    e.push_series("depth", 500, T0)
    [a] = e.run_cycle(T0).alerts
    assert (a.state, a.severity, a.runbook) == ("pending", "critical", "https://wiki/depth")
    assert db.exists()
    # A second engine on the same file sees the pending alert and makes it fire.
    e2 = build()
    e2.push_series("depth", 500, T0 + dt.timedelta(minutes=1))
    assert [a.state for a in e2.run_cycle(T0 + dt.timedelta(minutes=1)).alerts] == ["firing"]
    assert [a.state for a in e2.alerts()] == ["firing"]


def test_stock_rules_are_there_by_default() -> None:
    e = (
        tripline.Engine.builder()
        .instance("queue", "worker/queue-depth", params={"threshold": 10})
        .source("prometheus", {"type": "prometheus", "url": "http://127.0.0.1:9"})
        .build()
    )
    assert e.instances == ["queue"]


# --- pushing ----------------------------------------------------------------------------------


def test_timestamps_as_naive_or_aware_datetimes_or_epoch_seconds_are_one_instant() -> None:
    for t in (T0, T0.replace(tzinfo=None), T0.timestamp(), int(T0.timestamp())):
        e = depth_engine()
        e.push_series("depth", [500.0], [t])
        assert e.run_cycle(T0).alerts[0].value == 500.0, t


def test_numpy_arrays_of_values_and_datetime64_are_read_as_float64() -> None:
    e = depth_engine()
    ts = np.array(["2026-11-02T09:58", "2026-11-02T09:59"], dtype="datetime64[s]")
    e.push_series("depth", np.array([5, 700], dtype=np.int32), ts)
    [a] = e.run_cycle(T0).alerts
    assert a.value == 700.0
    e.push_series("depth", np.array([1.0, 2.0]), np.array([T0.timestamp() - 60, T0.timestamp()]))
    assert e.run_cycle(T0).alerts[0].state == "resolved"


def test_a_sequence_without_timestamps_ends_now() -> None:
    e = depth_engine()
    e.push_series("depth", [1.0, 2.0, 300.0])
    assert e.run_cycle().alerts[0].value == 300.0


def test_mismatched_or_non_numeric_series_are_invalid_arguments() -> None:
    e = depth_engine()
    with pytest.raises(tripline.InvalidArgument, match="2 timestamps but 1 values"):
        e.push_series("depth", [1.0], [T0, T0])
    with pytest.raises(ValueError):
        e.push_series("depth", ["lots"], [T0])
    with pytest.raises(tripline.InvalidArgument):
        e.push_series("depth", [1.0], ["yesterday"])
    with pytest.raises(tripline.InvalidArgument, match="not finite"):
        e.push_series("depth", [1.0], [float("nan")])


def test_labelled_series_make_a_set_and_each_label_set_is_replaced_on_its_own() -> None:
    e = tripline.Engine.builder().stock_rules(False).rule_source("b.rhai", SET_RULE).instance(
        "backlog", "host/backlog"
    ).build()
    e.push_series("backlog", 500, T0, labels={"queue": "emails"})
    e.push_series("backlog", 900, T0, labels={"queue": "sms"})
    e.push_series("backlog", 5, T0, labels={"queue": "sms"})
    assert sorted(a.summary for a in e.run_cycle(T0).alerts) == ["emails backlog 500"]
    e.clear_pushed()
    assert [a.state for a in e.run_cycle(T0 + dt.timedelta(minutes=1)).alerts] == ["resolved"]


def test_pushed_tables_are_read_as_rows() -> None:
    e = tripline.Engine.builder().stock_rules(False).rule_source("t.rhai", TABLE_RULE).instance(
        "runs", "host/failed-rows"
    ).build()
    e.push_table(
        "runs",
        [
            {"id": "a", "status": "ok", "at": T0},
            {"id": "b", "status": "failed", "error": "timeout", "n": 3, "ratio": 0.5, "x": None},
        ],
    )
    [a] = e.run_cycle(T0).alerts
    assert a.summary == "run b failed: timeout" and a.severity == "high"
    with pytest.raises(TypeError):
        e.push_table("runs", [{"id": object()}])


# --- cycles -----------------------------------------------------------------------------------


def test_run_cycle_can_evaluate_only_some_instances() -> None:
    e = (
        tripline.Engine.builder()
        .stock_rules(False)
        .rule_source("host/depth.rhai", DEPTH_RULE)
        .instance("a", "host/depth")
        .instance("b", "host/depth")
        .build()
    )
    e.push_series("depth", 500, T0)
    assert [a.instance for a in e.run_cycle(T0, instances=["b"]).alerts] == ["b"]
    with pytest.raises(tripline.InvalidArgument, match="no rule instance named"):
        e.run_cycle(T0, instances=["c"])


def test_run_cycle_async_runs_beside_other_tasks() -> None:
    e = depth_engine()
    e.push_series("depth", 250, T0)

    async def main() -> Tuple[List[str], List[str]]:
        ticks: List[str] = []

        async def other() -> None:
            ticks.append("other ran")

        report, _ = await asyncio.gather(e.run_cycle_async(T0), other())
        return [a.summary for a in report.alerts], ticks

    assert asyncio.run(main()) == (["depth 250"], ["other ran"])


class _PromHandler(http.server.BaseHTTPRequestHandler):
    """A Prometheus query API answered by a Python thread of this very process."""

    answered: List[str] = []

    def do_GET(self) -> None:  # noqa: N802
        self.answered.append(threading.current_thread().name)
        body = json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [
                        {"metric": {"queue": "emails"}, "value": [T0.timestamp(), "1500"]}
                    ],
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815 (the source posts its queries)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def prometheus_in_python() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PromHandler)
    t = threading.Thread(target=srv.serve_forever, name="python-prometheus", daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_gil_is_released_while_a_cycle_runs(prometheus_in_python: str) -> None:
    # The cycle waits on an HTTP answer that only another Python thread can give: were the GIL
    # held for the cycle, that thread could not run and the query would time out (a source error).
    _PromHandler.answered.clear()
    e = (
        tripline.Engine.builder()
        .source("prometheus", {"type": "prometheus", "url": prometheus_in_python, "timeout": "5s"})
        .instance("queue", "worker/queue-depth", params={"threshold": 1000})
        .build()
    )
    r = e.run_cycle(T0)
    assert r.source_failures == []
    assert [a.summary for a in r.alerts] == [
        "emails has 1500 waiting jobs (threshold 1000): scale up its workers"
    ]
    assert _PromHandler.answered and "MainThread" not in _PromHandler.answered


def test_a_failing_source_is_an_error_state_and_strict_hosts_get_a_source_error() -> None:
    e = (
        tripline.Engine.builder()
        .source("prometheus", {"type": "prometheus", "url": "http://127.0.0.1:9", "timeout": "2s"})
        .instance("queue", "worker/queue-depth")
        .build()
    )
    r = e.run_cycle(T0)
    assert [i for i, _ in r.source_failures] == ["queue"]
    assert [a.name for a in r.alerts] == ["SourceError"]
    with pytest.raises(tripline.SourceError, match="queue") as info:
        e.run_cycle(T0, raise_on_failure=True)
    assert info.value.code == "ERR_TRIPLINE_SOURCE"


def test_a_rule_that_throws_is_a_rule_error_alert_and_strict_hosts_get_a_rule_error() -> None:
    rule = 'const RULE = #{ id: "x/throws", severity: "warning", params: #{} };\n' \
        'fn query(p) { #{} }\nfn evaluate(d, p) { throw "broken on purpose"; }\n'
    e = tripline.Engine.builder().stock_rules(False).rule_source("x.rhai", rule).instance(
        "x", "x/throws"
    ).build()
    r = e.run_cycle(T0)
    assert [i for i, _ in r.rule_failures] == ["x"] and "broken on purpose" in r.rule_failures[0][1]
    with pytest.raises(tripline.RuleError, match="broken on purpose"):
        e.run_cycle(T0, raise_on_failure=True)


# --- receivers --------------------------------------------------------------------------------


def test_a_python_receiver_gets_each_notification() -> None:
    got: List[tripline.Notification] = []
    e = depth_engine(inbox=got.append)
    assert e.receivers == ["inbox"]
    e.push_series("depth", 250, T0)
    r = e.run_cycle(T0)
    assert len(r.delivered) == 1 and r.delivery_errors == []
    [n] = got
    assert (n.receiver, n.status, n.created_at) == ("inbox", "firing", T0)
    assert n.group_labels == {"alertname": "email-depth", "queue": "emails", "team": "mail"}
    assert [a.summary for a in n.alerts] == ["depth 250"]
    assert json.loads(n.to_json())["alerts"][0]["runbook"] == "https://runbooks.example.com/host#depth"
    assert "Notification to inbox firing alerts=1" in repr(n)
    assert [x.id for x in r.notifications] == [n.id]


def test_an_async_receiver_is_awaited_and_its_exception_is_a_failed_delivery() -> None:
    got: List[str] = []

    async def inbox(n: tripline.Notification) -> None:
        await asyncio.sleep(0)
        got.append(n.status)

    async def broken(n: tripline.Notification) -> None:
        raise RuntimeError("webhook refused")

    e = depth_engine(inbox=inbox, broken=broken)
    e.push_series("depth", 250, T0)
    r = e.run_cycle(T0)
    assert got == ["firing"]
    assert [x for x, _ in r.delivery_errors] == ["broken"] and "webhook refused" in r.delivery_errors[0][1]


def test_a_receiver_that_raises_is_retried_until_it_delivers() -> None:
    calls: List[str] = []

    def flaky(n: tripline.Notification) -> None:
        calls.append(n.id)
        if len(calls) == 1:
            raise RuntimeError("chat service is down")

    e = depth_engine()
    e.add_receiver("flaky", flaky)
    e.push_series("depth", 250, T0)
    r = e.run_cycle(T0)
    assert r.delivered == []
    assert r.delivery_errors[0][0] == "flaky" and "chat service is down" in r.delivery_errors[0][1]
    delivered = e.deliver(T0 + dt.timedelta(minutes=10))
    assert delivered == [calls[0]] and calls == [calls[0], calls[0]]


def test_receivers_are_added_before_the_first_cycle_only() -> None:
    e = depth_engine()
    e.add_receiver("a", lambda n: None)
    with pytest.raises(tripline.ConfigError, match="used twice"):
        e.add_receiver("a", lambda n: None)
    with pytest.raises(TypeError):
        e.add_receiver("b", "not callable")  # type: ignore[arg-type]
    e.run_cycle(T0)
    with pytest.raises(tripline.TriplineError, match="before the first cycle"):
        e.add_receiver("late", lambda n: None)


def test_a_python_receiver_can_be_routed_to_by_name_next_to_configured_ones(tmp_path: Path) -> None:
    (tmp_path / "depth.rhai").write_text(DEPTH_RULE)
    (tmp_path / "t.toml").write_text(
        'rules_dirs = ["."]\nstock_rules = false\n'
        '[route]\nreceiver = "console"\ngroup_wait = "0s"\n'
        '  [[route.routes]]\n  matchers = ["queue=emails"]\n  receiver = "py"\n'
        '[[receiver]]\ntype = "console"\nname = "console"\n'
        '[[rule]]\nname = "d"\nuse = "host/depth"\n'
    )
    got: List[str] = []
    e = tripline.Engine.from_config(tmp_path / "t.toml", receivers={"py": lambda n: got.append(n.receiver)})
    assert sorted(e.receivers) == ["console", "py"]
    e.push_series("depth", 250, T0)
    e.run_cycle(T0)
    assert got == ["py"]


# --- silences and acks ------------------------------------------------------------------------


def test_a_silence_mutes_matching_alerts_until_it_is_expired() -> None:
    got: List[str] = []
    e = depth_engine(inbox=lambda n: got.append(n.status))
    sid = e.add_silence(["queue=emails"], starts_at=T0, duration="2h", created_by="ops", comment="deploy")
    [s] = e.silences(all=True)
    assert (s["id"], s["matchers"], s["created_by"], s["comment"]) == (sid, ['queue="emails"'], "ops", "deploy")
    assert s["ends_at"] - s["starts_at"] == dt.timedelta(hours=2)
    e.push_series("depth", 250, T0)
    assert e.run_cycle(T0).firing and got == []
    later = T0 + dt.timedelta(minutes=1)
    assert e.expire_silence(sid, at=later) is True
    assert e.expire_silence(sid, at=later) is False
    assert e.expire_silence("no-such-silence") is False
    assert e.silences(at=later) == [] and len(e.silences(all=True, at=later)) == 1
    e.run_cycle(later)
    assert got == ["firing"]
    with pytest.raises(tripline.InvalidArgument, match="already passed"):
        e.add_silence(["queue=emails"], ends_at=dt.datetime.now(UTC) - dt.timedelta(minutes=1))
    with pytest.raises(tripline.InvalidArgument):
        e.add_silence(["queue=~("], duration="1h")
    with pytest.raises(tripline.InvalidArgument, match="duration"):
        e.add_silence(["queue=emails"], duration="soon")


def test_an_ack_tells_the_receivers_and_unknown_alerts_are_refused() -> None:
    got: List[Tuple[str, Any]] = []
    e = depth_engine(inbox=lambda n: got.append((n.status, n.acknowledged_by)))
    e.push_series("depth", 250, T0)
    [a] = e.run_cycle(T0).alerts
    told = e.ack(a.fingerprint, "alice", T0 + dt.timedelta(minutes=1))
    assert told == ["inbox"]
    assert got == [("firing", None), ("acknowledged", "alice")]
    with pytest.raises(tripline.TriplineError, match="no alert with fingerprint") as info:
        e.ack("0000", "alice")
    assert info.value.code == "ERR_TRIPLINE_STATE"


# --- rule tests -------------------------------------------------------------------------------


def test_test_rules_runs_the_fixture_cases_like_the_cli() -> None:
    report = tripline.test_rules(REPO / "rules" / "worker")
    assert report.failed == 0 and report.passed > 10
    assert all(c.rule.startswith("worker/") for c in report.cases)
    assert "passed, 0 failed" in repr(report)


def test_test_rules_reports_a_failing_case(tmp_path: Path) -> None:
    (tmp_path / "depth.rhai").write_text(DEPTH_RULE)
    (tmp_path / "depth.test.toml").write_text(
        '[[case]]\nname = "expects a fire that does not come"\nat = "2026-11-01T10:00:00Z"\n'
        '[[case.expect]]\nstate = "firing"\n'
    )
    report = tripline.test_rules([tmp_path])
    assert (report.passed, report.failed) == (0, 1)
    assert report.cases[0].failure and not report.cases[0].passed


def test_the_stock_worker_rules_read_what_a_worker_pushes() -> None:
    e = (
        tripline.Engine.builder()
        .instance("QueueBacklog", "worker/queue-depth", params={"source": "pushed", "threshold": 100})
        .instance("JobErrorRate", "worker/error-rate", params={"source": "pushed"})
        .build()
    )
    e.push_series("queue_depth", 250, T0, labels={"queue": "emails"})
    e.push_series("queue_depth", 3, T0, labels={"queue": "sms"})
    e.push_series("jobs_completed", [45, 45], [T0 - dt.timedelta(minutes=1), T0], labels={"queue": "emails"})
    e.push_series("jobs_failed", [5, 5], [T0 - dt.timedelta(minutes=1), T0], labels={"queue": "emails"})
    summaries = sorted(a.summary for a in e.run_cycle(T0).firing)
    assert summaries == [
        "emails has 250 waiting jobs (threshold 100): scale up its workers",
        "emails: 10% of jobs failed (threshold 5%): investigate the root cause before scaling",
    ]
