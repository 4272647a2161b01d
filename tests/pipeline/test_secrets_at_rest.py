"""Secrets at rest (issue 11, item 9): no value of a ``secret: true`` setting, however short, is stored in
delivery jobs or dead letters, printed by ``sluice dlq show`` or logged, while every delivery still
carries the right credentials (restored from the config at send time)."""

from __future__ import annotations

import base64
import json
import logging

import yaml
from click.testing import CliRunner
from pipeline_helpers import TEST_INTEGRATIONS, fast_retry, pipeline_config, send, sql, track, wait_until

from sdk.cli import main

TOKEN = "Qz"  # two characters: the old redaction skipped anything under four


def stored_text(dsn: str) -> str:
    """Everything the pipeline stored about deliveries, as text."""
    rows = sql(dsn, "SELECT row_to_json(j)::text FROM delivery_jobs j")
    rows += sql(dsn, "SELECT row_to_json(d)::text FROM dead_letters d")
    return "\n".join(r[0] for r in rows)


def echo_key(path, body):
    return isinstance(body, list) and any(e.get("seq") == 2 for e in body)


def test_a_two_character_secret_is_never_stored_shown_or_logged(
    start_pipeline, sink, pg_dsn, tmp_path, caplog
):  # noqa: E501
    caplog.set_level(logging.INFO)
    # The vendor rejects one event and echoes the key in its answer (the review saw that stored and listed).
    sink.respond(400, match=echo_key, body=json.dumps({"error": f"bad request for key {TOKEN}"}))
    dest = {
        "name": "box",
        "integration": "strictbox",
        "config": {"url": sink.url("/s"), "token": TOKEN},
        "retry": fast_retry(),
        "ordering": False,
    }
    cfg = pipeline_config([dest])
    p = start_pipeline(cfg, integrations_root=TEST_INTEGRATIONS)
    send(p, [track("u1", 1, revenue=1), track("u3", 3, revenue=1)])
    wait_until(lambda: sink.delivered_count("/s") == 2)
    send(p, [track("u2", 2, revenue=1)])  # on its own: a rejected batch would take its companions along
    wait_until(lambda: sql(pg_dsn, "SELECT count(*) FROM dead_letters")[0][0] == 1)
    wait_until(lambda: sql(pg_dsn, "SELECT count(*) FROM delivery_jobs WHERE state = 'pending'")[0][0] == 0)

    # Every request the vendor received carried the real credential.
    assert sink.attempts and all(a.headers["X-Box-Token"] == TOKEN for a in sink.attempts)
    stored = stored_text(pg_dsn)
    assert TOKEN not in stored
    (response,) = sql(pg_dsn, "SELECT last_response FROM dead_letters")[0]
    assert "bad request for key ***" in response

    (dl_id,) = sql(pg_dsn, "SELECT id FROM dead_letters")[0]
    config_file = tmp_path / "sluice.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    for extra in ([], ["--config", str(config_file)]):
        shown = CliRunner().invoke(main, ["dlq", "show", str(dl_id), "--database-url", pg_dsn, *extra])
        assert shown.exit_code == 0, shown.output
        assert TOKEN not in shown.output and "***" in shown.output

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "deliveries in the last" in logged, "the failed delivery was logged"
    assert TOKEN not in logged


def test_dlq_show_hides_secrets_stored_before_they_were_sealed(start_pipeline, sink, pg_dsn, tmp_path):
    """A dead letter written by an older version (raw credentials in it) is shown redacted when the
    config says which values are secrets."""
    dest = {"name": "box", "integration": "strictbox", "config": {"url": sink.url("/s"), "token": TOKEN}}
    cfg = pipeline_config([dest])
    start_pipeline(cfg, integrations_root=TEST_INTEGRATIONS)
    sql(
        pg_dsn,
        "INSERT INTO dead_letters (stage, destination, user_key, event, last_request, last_response, reason) "
        "VALUES ('delivery', 'box', 'u1', '{}', %s, %s, %s)",
        (json.dumps({"headers": {"X-Custom-Token": TOKEN}}), f"echo {TOKEN}", f"key {TOKEN} refused"),
    )
    (dl_id,) = sql(pg_dsn, "SELECT id FROM dead_letters")[0]
    config_file = tmp_path / "sluice.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    args = ["dlq", "show", str(dl_id), "--database-url", pg_dsn, "--config", str(config_file)]
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code == 0, shown.output
    assert TOKEN not in shown.output and shown.output.count("***") == 3


def test_basic_auth_credentials_are_sealed_and_restored(start_pipeline, sink, pg_dsn):
    """Customer.io authenticates with HTTP Basic (site id : API key), i.e. base64 of both secrets, which a
    search for the raw values would miss. Sent to the sink through the destination's base_url."""
    site, key = "Zs", "Kx"
    dest = {
        "name": "cio",
        "integration": "customerio",
        "config": {"siteID": site, "apiKey": key},
        "base_url": sink.url("/cio"),
        "retry": fast_retry(),
    }
    p = start_pipeline(pipeline_config([dest]))
    send(p, [{"type": "identify", "userId": "u1", "messageId": "m1", "traits": {"email": "a@example.com"}}])
    wait_until(lambda: sink.delivered_count() == 1)
    (attempt,) = sink.attempts
    assert attempt.path == "/cio/api/v1/customers/u1"
    assert attempt.headers["Authorization"] == "Basic " + base64.b64encode(f"{site}:{key}".encode()).decode()
    stored = stored_text(pg_dsn)
    for secret in (site, key, base64.b64encode(f"{site}:{key}".encode()).decode()):
        assert secret not in stored
