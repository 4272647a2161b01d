"""sluice.yaml: ${ENV} expansion, errors that name the key, start-up checks of every destination."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pipeline_helpers import TEST_INTEGRATIONS, pipeline_config

from pipeline.app import load_connectors
from pipeline.config import ConfigError, load_config, parse_config
from pipeline.config_checks import _check_request
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


def webhook_dest(**config):
    return {"name": "hook", "integration": "webhook", "config": config}


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        ({"webhookUrl": "not a url"}, ["destinations[0] (hook).config.webhookUrl:"]),
        ({"webhookUrl": "ftp://files.example.com/in"}, ["destinations[0] (hook).config.webhookUrl:"]),
        (
            {"webhookUrl": "https://example.com/in", "headers": [{"from": "X Bad", "to": "1"}]},
            ["destinations[0] (hook).config.headers[0].from:", "'X Bad'"],
        ),
    ],
)
def test_destination_configs_that_cannot_send_are_refused_at_start(config, fragments):
    cfg = parse_config(pipeline_config([webhook_dest(**config)]))
    with pytest.raises(ConfigError) as e:
        load_connectors(cfg, allow_uncertified=True)
    for fragment in fragments:
        assert fragment in str(e.value)


@pytest.mark.parametrize(
    ("url", "headers", "fragment"),
    [
        ("ftp://x.example.com/", {}, "uses scheme 'ftp'"),
        ("//x.example.com/in", {}, "is not an absolute URL"),
        ("https://x.example.com/", {"X Bad": "1"}, "'X Bad' is not a valid HTTP header name"),
        ("https://x.example.com/", {"Content-Length": "1"}, "is set by the HTTP client"),
        ("https://x.example.com/", {"Host": "elsewhere"}, "is set by the HTTP client"),
        ("https://x.example.com/", {"X-A": "1\r\nX-B: 2"}, "contains a line break"),
    ],
)
def test_requests_a_config_would_produce_are_checked(url, headers, fragment):
    config = {"target": url, "rows": [{"name": n} for n in headers]}
    with pytest.raises(ConfigError) as e:
        _check_request("POST", url, headers, config, "destinations[3] (d)")
    assert fragment in str(e.value) and str(e.value).startswith("destinations[3] (d).config")
    if headers and "line break" not in fragment:
        assert str(e.value).startswith("destinations[3] (d).config.rows[0].name:")


def test_declarative_destination_urls_are_checked_too():
    cfg = parse_config(
        pipeline_config([{"name": "s", "integration": "strictbox", "config": {"url": "ftp://x/y"}}])
    )
    with pytest.raises(
        ConfigError, match=r"destinations\[0\] \(s\)\.config\.url: the destination URL uses scheme 'ftp'"
    ):
        load_connectors(cfg, allow_uncertified=True, root=TEST_INTEGRATIONS)


def test_valid_destination_configs_still_start():
    ok = webhook_dest(webhookUrl="https://example.com/in", headers=[{"from": "X-Api-Key", "to": "k"}])
    assert set(load_connectors(parse_config(pipeline_config([ok])), allow_uncertified=True)) == {"hook"}


def test_duplicate_yaml_keys_are_refused_with_their_path(tmp_path):
    f = tmp_path / "sluice.yaml"
    f.write_text(
        "sources:\n  - name: web\n    write_key: k\n"
        "destinations:\n  - name: hook\n    integration: webhook\n    config:\n"
        "      webhookUrl: https://a.example.com/\n      webhookUrl: https://b.example.com/\n"
        "connections:\n  - source: web\n    destinations: [hook]\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "destinations[0].config: duplicate key 'webhookUrl' (first given on line 8)" in str(e.value)
    r = CliRunner().invoke(main, ["up", "--config", str(f), "--database-url", "postgresql://unused"])
    assert r.exit_code != 0 and "duplicate key 'webhookUrl'" in r.output


def test_sluice_up_refuses_a_destination_that_cannot_send(tmp_path):
    f = tmp_path / "sluice.yaml"
    f.write_text(
        "sources: [{name: web, write_key: k}]\n"
        "destinations: [{name: hook, integration: webhook, config: {webhookUrl: 'ftp://x.example.com/'}}]\n"
        "connections: [{source: web, destinations: [hook]}]\n"
    )
    r = CliRunner().invoke(
        main, ["up", "--config", str(f), "--database-url", "postgresql://unused", "--allow-uncertified"]
    )
    assert r.exit_code != 0 and "destinations[0] (hook).config.webhookUrl" in r.output


def test_yaml_merge_keys_may_be_overridden_without_counting_as_duplicates(tmp_path):
    f = tmp_path / "sluice.yaml"
    f.write_text(
        "sources: [{name: web, write_key: k}]\n"
        "destinations:\n"
        "  - {name: a, integration: webhook, config: {webhookUrl: 'https://a.example.com/'},\n"
        "     retry: &r {initial_s: 1, max_backoff_s: 5}}\n"
        "  - {name: b, integration: webhook, config: {webhookUrl: 'https://b.example.com/'},\n"
        "     retry: {<<: *r, initial_s: 2}}\n"
        "connections: [{source: web, destinations: [a, b]}]\n"
    )
    b = load_config(f).destinations[1]
    assert (b.retry.initial_s, b.retry.max_backoff_s) == (2, 5)
