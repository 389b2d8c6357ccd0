"""Shared fixtures: a rule that reads pushed data, and a real moto server for the SNS tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

REPO = Path(__file__).resolve().parents[3]

DEPTH_RULE = r"""
const RULE = #{ id: "host/depth", severity: "warning",
                runbook: "https://runbooks.example.com/host#depth",
                params: #{ threshold: 100 } };
fn query(p) { #{ depth: pushed("depth") } }
fn evaluate(d, p) {
    let v = d.depth.last();
    if v != () && v > p.threshold {
        fire(#{ summary: `depth ${fmt_number(v)}`, value: v, labels: #{ queue: "emails" } });
    }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Moto:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def data(self) -> Dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json") as r:
            return dict(json.load(r))

    def sns_messages(self, topic_arn: str) -> List[List[Any]]:
        """Messages published to a topic, as moto records them: [id, message, subject, attrs, group]."""
        out: List[List[Any]] = []
        for t in self.data().get("sns", {}).get("Topic", []):
            if t.get("arn") == topic_arn:
                out.extend(t.get("sent_notifications", []))
        return out

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req).close()


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    server = os.environ.get("TRIPLINE_MOTO_SERVER")
    if not server:
        if os.environ.get("TRIPLINE_REQUIRE_REAL_PARTS") == "1":
            pytest.fail("TRIPLINE_MOTO_SERVER is not set (scripts/test sets it)")
        pytest.skip("TRIPLINE_MOTO_SERVER is not set")
    port = _free_port()
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    m = Moto(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while True:
        try:
            m.data()
            break
        except OSError:
            assert proc.poll() is None, f"moto_server exited with {proc.returncode}"
            assert time.monotonic() < deadline, "moto_server did not answer within 60 s"
            time.sleep(0.1)
    try:
        yield m
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def aws_env(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """The environment a Lambda gives its code, pointed at moto."""
    moto.reset()
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto
