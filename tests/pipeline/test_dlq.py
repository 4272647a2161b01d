"""Dead letters through the CLI: list, show, replay in original order after the vendor is fixed."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner
from pipeline_helpers import pipeline_config, send, sql, track, wait_until, webhook

from sdk.cli import main


def bad(path, body):
    return isinstance(body, dict) and body.get("properties", {}).get("bad") is True


def cli(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def config_file(tmp_path, cfg):
    """The pipeline's sluice.yaml, which replay reads to know which destinations are delivered."""
    path = tmp_path / "sluice.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_dlq_list_show_and_replay_after_the_fix(start_pipeline, sink, pg_dsn, tmp_path):
    sink.respond(400, match=bad, body='{"error":"field x rejected"}')
    cfg = pipeline_config([webhook("hook", sink.url()), webhook("other", sink.url("/other"))])
    conf = config_file(tmp_path, cfg)
    p = start_pipeline(cfg)
    events = [
        track("u1", 1),
        track("u1", 2, bad=True),
        track("u2", 1, bad=True),
        track("u1", 3, bad=True),
        track("u2", 2),
    ]
    send(p, events)
    # 3 bad events x 2 destinations
    wait_until(lambda: sql(pg_dsn, "SELECT count(*) FROM dead_letters")[0][0] == 6)

    r = cli("dlq", "list", "--database-url", pg_dsn, "--destination", "hook", "--json")
    assert r.exit_code == 0, r.output
    listed = [json.loads(line) for line in r.output.splitlines()]
    assert [x["message_id"] for x in listed] == ["u1-2", "u2-1", "u1-3"]
    assert all(x["destination"] == "hook" and x["last_status"] == 400 for x in listed)

    r = cli("dlq", "list", "--database-url", pg_dsn, "--reason", "no such reason")
    assert r.exit_code == 0 and "no dead letters match" in r.output

    r = cli("dlq", "show", "--database-url", pg_dsn, str(listed[0]["id"]))
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert shown["event"]["messageId"] == "u1-2"
    assert "field x rejected" in shown["last_response"]
    assert shown["last_request"]["json"]["messageId"] == "u1-2"

    r = cli("dlq", "show", "--database-url", pg_dsn, "999999")
    assert r.exit_code != 0 and "no dead letter with id 999999" in r.output

    r = cli("dlq", "replay", "--database-url", pg_dsn)
    assert r.exit_code != 0 and "say what to replay" in r.output

    # The vendor is fixed; replay only the hook destination's letters.
    sink.clear()
    r = cli("dlq", "replay", "--database-url", pg_dsn, "--destination", "hook")
    assert r.exit_code != 0 and "pass --config" in r.output, "replay must know the configured destinations"
    r = cli("dlq", "replay", "--database-url", pg_dsn, "--config", conf, "--destination", "hook")
    assert r.exit_code == 0 and "re-enqueued 3 dead letter(s)" in r.output, r.output
    wait_until(lambda: sink.delivered_count("/hook") >= 5)
    replayed = [e["messageId"] for e in sink.delivered_events("/hook")][2:]
    assert sorted(replayed) == ["u1-2", "u1-3", "u2-1"]
    assert [m for m in replayed if m.startswith("u1")] == ["u1-2", "u1-3"]  # original order per user
    # and re-enqueued as jobs in the original order
    jobs = sql(pg_dsn, "SELECT message_id FROM delivery_jobs WHERE replay_of IS NOT NULL ORDER BY id")
    assert [j[0] for j in jobs] == ["u1-2", "u2-1", "u1-3"]
    assert sql(pg_dsn, "SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL")[0][0] == 3
    wait_until(
        lambda: (
            sql(
                pg_dsn,
                "SELECT count(*) FROM delivery_jobs WHERE replay_of IS NOT NULL AND state = 'succeeded'",
            )[0][0]
            == 3
        )
    )

    # Replaying again does nothing; the other destination's letters are untouched.
    r = cli("dlq", "replay", "--database-url", pg_dsn, "--config", conf, "--destination", "hook")
    assert "re-enqueued 0" in r.output
    r = cli("dlq", "list", "--database-url", pg_dsn, "--json")
    assert {json.loads(line)["destination"] for line in r.output.splitlines()} == {"other"}
    r = cli("dlq", "list", "--database-url", pg_dsn, "--json", "--all", "--since", "1h")
    assert len(r.output.splitlines()) == 6


def test_replay_of_a_mapping_error_maps_again(start_pipeline, sink, pg_dsn, tmp_path):
    """A transform-stage letter has no request; replay maps the stored event with the connector then."""
    cfg = pipeline_config([webhook("hook", sink.url())])
    conf = config_file(tmp_path, cfg)
    p = start_pipeline(cfg)
    send(p, [track("u1", 1)])
    wait_until(lambda: sink.delivered_count() == 1)
    # Simulate a letter recorded by the processor (e.g. before a connector fix).
    sql(
        pg_dsn,
        "INSERT INTO dead_letters (stage, gateway_job_id, destination, user_key, message_id, event, reason) "
        "VALUES ('transform', 1, 'hook', 'u9', 'm9', %s, 'instrumentation_error: test')",
        (json.dumps({"type": "track", "userId": "u9", "event": "E", "messageId": "m9"}),),
    )
    r = cli("dlq", "replay", "--database-url", pg_dsn, "--config", conf, "--reason", "instrumentation")
    assert "re-enqueued 1" in r.output
    wait_until(lambda: sink.delivered_count() == 2)
    assert sink.delivered_events()[-1]["messageId"] == "m9"


def test_replay_to_a_destination_no_longer_configured_is_refused(start_pipeline, sink, pg_dsn, tmp_path):
    """Issue 11 item 11: such a replay re-enqueued thousands of jobs that stayed pending for ever."""
    cfg = pipeline_config([webhook("hook", sink.url()), webhook("paused", sink.url("/p"), enabled=False)])
    conf = config_file(tmp_path, cfg)
    start_pipeline(cfg)
    for dest, mid in (("removed", "m1"), ("removed", "m2"), ("paused", "m3"), ("hook", "m4")):
        sql(
            pg_dsn,
            "INSERT INTO dead_letters (stage, destination, user_key, message_id, event, reason) "
            "VALUES ('transform', %s, 'u', %s, %s, 'instrumentation_error: test')",
            (dest, mid, json.dumps({"type": "track", "userId": "u", "event": "E", "messageId": mid})),
        )
    r = cli("dlq", "replay", "--database-url", pg_dsn, "--config", conf, "--all")
    assert r.exit_code != 0
    message = " ".join(r.output.split())
    assert "2 dead letter(s) for destination 'removed', which is not in the config" in message
    assert "1 dead letter(s) for destination 'paused', which is disabled" in message
    assert "--destination" in message
    # Nothing was re-enqueued and every letter is still listed.
    assert sql(pg_dsn, "SELECT count(*) FROM delivery_jobs WHERE replay_of IS NOT NULL")[0][0] == 0
    assert sql(pg_dsn, "SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL")[0][0] == 4
    # Narrowed to a configured destination, the replay goes ahead.
    r = cli("dlq", "replay", "--database-url", pg_dsn, "--config", conf, "--destination", "hook")
    assert r.exit_code == 0 and "re-enqueued 1" in r.output
    wait_until(lambda: sink.delivered_count() == 1)
