"""sluice.yaml: ${ENV} expansion, errors that name the key, start-up checks of every destination."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pipeline_helpers import TEST_INTEGRATIONS, pipeline_config

from pipeline.app import load_connectors
from pipeline.config import ConfigError, load_config, parse_config
from sdk.cli import main

EXAMPLE = """
sources:
  - name: web
    write_key: ${WEB_WRITE_KEY}
destinations:
  - name: my-webhook
    integration: webhook
    config: {webhookUrl: "${HOOK_URL:-http://127.0.0.1:9000/hook}", webhookMethod: POST}
connections:
  - source: web
    destinations: [my-webhook]
network:
  allow_private: ["127.0.0.0/8"]
"""


def test_issue_example_parses_with_env_and_defaults(tmp_path):
    f = tmp_path / "sluice.yaml"
    f.write_text(EXAMPLE)
    cfg = load_config(f, env={"WEB_WRITE_KEY": "wk-1"})
    assert cfg.sources[0].write_key == "wk-1"
    d = cfg.destinations[0]
    assert d.config["webhookUrl"] == "http://127.0.0.1:9000/hook"
    assert d.ordering is True and d.retry.initial_s == 10 and d.retry.max_backoff_s == 300
    assert d.retry.max_age_s == 10800 and d.retry.min_attempts == 3
    assert [x.name for x in cfg.destinations_for("web")] == ["my-webhook"]


def test_missing_env_variable_names_the_key(tmp_path):
    f = tmp_path / "sluice.yaml"
    f.write_text(EXAMPLE)
    with pytest.raises(
        ConfigError, match=r"sources\[0\]\.write_key: environment variable WEB_WRITE_KEY is not set"
    ):
        load_config(f, env={})


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        (
            {"destinations": [{"name": "d", "integration": "webhook", "retyr": {}}]},
            "destinations[0].retyr: unknown key",
        ),
        (
            {"destinations": [{"name": "d", "integration": "webhook", "retry": {"initial_s": "soon"}}]},
            "destinations[0].retry.initial_s",
        ),
        ({"connections": [{"source": "web", "destinations": ["nope"]}]}, "no destination named 'nope'"),
        ({"network": {"allow_private": ["localhost"]}}, "network.allow_private"),
        ({"sources": []}, "sources"),
        (
            {
                "destinations": [
                    {"name": "d", "integration": "webhook", "filters": {"event_types": ["click"]}}
                ]
            },
            "unknown event type",
        ),
    ],
)
def test_wrong_config_errors_name_the_key(patch, fragment):
    raw = pipeline_config([])
    raw.update(patch)
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    assert fragment in str(e.value)


def test_destination_checks_at_start_name_the_destination():
    bad = parse_config(pipeline_config([{"name": "strict", "integration": "strictbox", "config": {}}]))
    with pytest.raises(ConfigError, match=r"destinations\[0\] \(strict\)\.config: .*'url'"):
        load_connectors(bad, allow_uncertified=True, root=TEST_INTEGRATIONS)
    unknown = parse_config(pipeline_config([{"name": "x", "integration": "no-such-thing"}]))
    with pytest.raises(ConfigError, match=r"destinations\[0\] \(x\)\.integration: no integration named"):
        load_connectors(unknown, allow_uncertified=True, root=TEST_INTEGRATIONS)
    good = parse_config(
        pipeline_config([{"name": "s", "integration": "strictbox", "config": {"url": "http://x"}}])
    )
    with pytest.raises(ConfigError, match="--allow-uncertified"):
        load_connectors(good, allow_uncertified=False, root=TEST_INTEGRATIONS)
    assert set(load_connectors(good, allow_uncertified=True, root=TEST_INTEGRATIONS)) == {"s"}


def test_sluice_up_reports_a_bad_file_and_exits_nonzero(tmp_path):
    f = tmp_path / "sluice.yaml"
    f.write_text("sources: [{name: web}]\n")
    r = CliRunner().invoke(main, ["up", "--config", str(f), "--database-url", "postgresql://unused"])
    assert r.exit_code != 0
    assert "sources[0].write_key: required key is missing" in r.output
    r = CliRunner().invoke(main, ["up", "--config", str(tmp_path / "missing.yaml")])
    assert r.exit_code != 0 and "no such file" in r.output
