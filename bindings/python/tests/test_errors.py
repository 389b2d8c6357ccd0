"""Errors: each kind its own `TriplineError` subclass, with the position of the bad key or line."""

from __future__ import annotations

from pathlib import Path

import pytest

import tripline


def write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_an_unknown_key_is_a_config_error_at_that_key(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "t.toml",
        'stock_rules = true\n\n[[rule]]\nuse = "aws/lambda-errors"\nparms = { function = "f" }\n',
    )
    with pytest.raises(tripline.ConfigError) as info:
        tripline.Engine.from_config(cfg)
    e = info.value
    assert (e.path, e.line, e.column) == (str(cfg), 5, 1)
    assert e.code == "ERR_TRIPLINE_CONFIG"
    assert str(e).startswith(f"{cfg}:5:1: unknown field `parms`")
    assert isinstance(e, tripline.TriplineError)


def test_a_bad_value_points_at_the_value(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "t.toml",
        '[[rule]]\nuse = "worker/queue-depth"\nfor = "soon"\n'
        '[sources.prometheus]\ntype = "prometheus"\nurl = "http://127.0.0.1:9"\n',
    )
    with pytest.raises(tripline.ConfigError) as info:
        tripline.Engine.from_config(cfg)
    assert (info.value.path, info.value.line, info.value.column) == (str(cfg), 3, 7)


def test_an_unknown_rule_points_at_its_use(tmp_path: Path) -> None:
    cfg = write(tmp_path / "t.toml", '\n\n[[rule]]\nname = "x"\nuse = "no/such-rule"\n')
    with pytest.raises(tripline.ConfigError, match="no rule with id") as info:
        tripline.Engine.from_config(cfg)
    assert (info.value.line, info.value.column) == (5, 7)


def test_several_problems_are_each_in_errors_and_the_first_is_the_position(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "t.toml",
        '[[rule]]\nname = "a"\nuse = "no/one"\n\n[[rule]]\nname = "b"\nuse = "no/two"\n',
    )
    with pytest.raises(tripline.ConfigError) as info:
        tripline.Engine.from_config(cfg)
    e = info.value
    assert [(x.line, x.column) for x in e.errors] == [(3, 7), (7, 7)]
    assert all(isinstance(x, tripline.ConfigError) for x in e.errors)
    assert (e.line, e.column) == (3, 7)


def test_a_missing_file_is_a_config_error_caused_by_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(tripline.ConfigError) as info:
        tripline.Engine.from_config(tmp_path / "absent.toml")
    assert info.value.path == str(tmp_path / "absent.toml")
    assert isinstance(info.value.__cause__, OSError)


def test_a_rule_that_does_not_parse_is_a_rule_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    rule = write(
        tmp_path / "rules" / "bad.rhai",
        'const RULE = #{ id: "x/bad", severity: "warning", params: #{} };\n'
        "fn query(p) { #{} }\n"
        "fn evaluate(d, p) {\n    let x = ;\n}\n",
    )
    cfg = write(tmp_path / "t.toml", 'rules_dirs = ["rules"]\nstock_rules = false\n')
    # A config engine keeps going with a broken rule file (it is raised as a rule-error alert).
    e = tripline.Engine.from_config(cfg)
    [a] = e.run_cycle().alerts
    assert a.name == "RuleLoadError" and "bad.rhai:4" in a.summary
    # The builder refuses it.
    with pytest.raises(tripline.RuleError) as info:
        tripline.Engine.builder().stock_rules(False).rules_dir(tmp_path / "rules").build()
    assert (info.value.path, info.value.line) == (str(rule), 4)
    assert info.value.code == "ERR_TRIPLINE_RULE"


def test_a_rule_source_given_in_code_is_located_by_its_origin() -> None:
    with pytest.raises(tripline.RuleError) as info:
        tripline.Engine.builder().stock_rules(False).rule_source(
            "inline.rhai", "fn evaluate(d, p) {\n  let = 1;\n}\n"
        ).build()
    assert (info.value.path, info.value.line) == ("inline.rhai", 2)


def test_builder_mistakes_are_config_errors() -> None:
    with pytest.raises(tripline.ConfigError, match="has no parameter"):
        tripline.Engine.builder().instance("q", "worker/queue-depth", params={"treshold": 1}).build()
    with pytest.raises(tripline.ConfigError, match="for"):
        tripline.Engine.builder().instance("q", "worker/queue-depth", for_="soon").build()
    with pytest.raises(tripline.ConfigError, match="severity|unknown"):
        tripline.Engine.builder().instance("q", "worker/queue-depth", severity="loud").build()
    with pytest.raises(tripline.ConfigError) as info:
        tripline.Engine.builder().source("prometheus", {"type": "prometheus", "ulr": "x"}).build()
    assert info.value.path == "<builder>" and info.value.line is not None


def test_a_store_that_cannot_be_opened_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(tripline.StoreError) as info:
        tripline.Engine.builder().store(str(tmp_path)).build()  # a directory, not a file
    assert info.value.code == "ERR_TRIPLINE_STORE"
