"""Salesforce's declared steps end to end: gateway -> Postgres -> processor -> router -> a loopback fake
of Salesforce's OAuth and REST endpoints (tests/support/fake_salesforce.py).

What must hold (issue 8): the token is fetched once for many events; a new email is looked up, then
created; a known one is looked up, then updated; an expired session (401) costs one token refresh and
the write still succeeds; a refused token exchange (invalid_grant) dead-letters the event with a reason
that names the vendor's error and holds no credential.
"""

from __future__ import annotations

import json

import pytest

from tests.pipeline.pipeline_helpers import fast_retry, pipeline_config, send, sql, wait_until
from tests.support.fake_salesforce import FakeSalesforce

PASSWORD, SECURITY_TOKEN = "hunter2-not-real", "SECTOKxyz987"


@pytest.fixture
def fake():
    f = FakeSalesforce(username="api@example.com", password=PASSWORD + SECURITY_TOKEN).start()
    yield f
    f.stop()


def _dest(name: str, fake: FakeSalesforce, password: str = PASSWORD) -> dict:
    return {
        "name": name,
        "integration": "salesforce",
        "config": {"userName": "api@example.com", "password": password, "initialAccessToken": SECURITY_TOKEN},
        # Every vendor URL (login host and the instance URL the token answer names) goes to the fake.
        "base_url": fake.url,
        "retry": fast_retry(),
    }


def _identify(user: str, email: str, seq: int, **traits: object) -> dict:
    return {"type": "identify", "userId": user, "messageId": f"{user}-{seq}",
            "traits": {"email": email, "name": "Ada Lovelace", **traits}}  # fmt: skip


def test_token_once_lookup_then_create_or_update_and_401_refresh(start_pipeline, fake, pg_dsn):
    p = start_pipeline(pipeline_config([_dest("sf", fake)]))
    send(p, [_identify("u1", "ada@example.com", 1), _identify("u2", "bob@example.com", 2)])
    wait_until(lambda: len(fake.calls("create")) == 2)
    assert sorted(lead["Email"] for lead in fake.leads.values()) == ["ada@example.com", "bob@example.com"]
    assert len(fake.calls("search")) == 2  # each write was preceded by its lookup

    # A known email: the lookup finds the Lead, so the same body goes to an update of that record.
    send(p, [_identify("u1", "ada@example.com", 3, title="Countess")])
    wait_until(lambda: len(fake.calls("update")) == 1)
    upd = fake.calls("update")[0]
    ada_id = next(i for i, lead in fake.leads.items() if lead["Email"] == "ada@example.com")
    assert upd.path.endswith(f"/sobjects/Lead/{ada_id}") and upd.body["Title"] == "Countess"
    assert len(fake.calls("create")) == 2 and len(fake.calls("token")) == 1  # token fetched once

    # The session expires: the next lookup gets 401, the router renews the token once and goes on.
    fake.expire_sessions()
    send(p, [_identify("u3", "cy@example.com", 4)])
    wait_until(lambda: len(fake.calls("create")) == 3)
    assert len(fake.calls("token")) == 2
    token_form = fake.calls("token")[0].body
    assert token_form["grant_type"] == "password" and token_form["password"] == PASSWORD + SECURITY_TOKEN
    assert sql(pg_dsn, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_expired_session_on_the_write_is_renewed_once(start_pipeline, fake, pg_dsn):
    p = start_pipeline(pipeline_config([_dest("sf", fake)]))
    send(p, [_identify("u1", "ada@example.com", 1)])
    wait_until(lambda: len(fake.calls("create")) == 1)
    # Expire exactly between lookup and write: the fake answers the next search, then drops tokens.
    original, expired = fake.answer, []

    def expire_after_search(s):
        out = original(s)
        if "/parameterizedSearch" in s.path and not expired:
            expired.append(True)
            fake.tokens.clear()
        return out

    fake.answer = expire_after_search
    send(p, [_identify("u2", "bob@example.com", 2)])
    wait_until(lambda: len(fake.calls("create")) == 3)  # the 401 write, then the renewed one
    assert len(fake.calls("token")) == 2
    first, renewed = fake.calls("create")[1:]
    assert first.headers["Authorization"] != renewed.headers["Authorization"]
    assert sorted(lead["Email"] for lead in fake.leads.values()) == ["ada@example.com", "bob@example.com"]
    assert sql(pg_dsn, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_refused_token_exchange_dead_letters_with_a_redacted_reason(start_pipeline, fake, pg_dsn):
    p = start_pipeline(pipeline_config([_dest("sf_bad", fake, password="wrong-password-123")]))
    send(p, [_identify("u1", "ada@example.com", 1)])
    rows = wait_until(lambda: sql(pg_dsn, "SELECT reason, last_request::text, last_status FROM dead_letters"))
    reason, last_request, status = rows[0]
    assert "token" in reason and "invalid_grant" in reason, reason
    assert status == 400
    stored = json.dumps(sql(pg_dsn, "SELECT row_to_json(d)::text FROM dead_letters d"))
    for secret in ("wrong-password-123", SECURITY_TOKEN):
        assert secret not in stored
    assert "00Dfake!token" not in stored  # no access token either
    assert not fake.calls("create") and not fake.calls("search")


def test_steps_run_through_sluice_up(fake, pg_dsn, tmp_path):
    """The same steps in a real `sluice up` process (the way users run it): token once, lookup, create."""
    import httpx

    from tests.support.pipeline_proc import SluiceProcess

    cfg = pipeline_config([_dest("sf", fake)])
    with SluiceProcess(cfg, tmp_path, database_url=pg_dsn).start() as proc:
        events = [_identify(f"u{i}", f"p{i}@example.com", i) for i in range(5)]
        r = httpx.post(f"{proc.url}/v1/batch", json={"batch": events}, auth=(proc.write_key, ""), timeout=30)
        assert r.status_code == 200, r.text
        wait_until(lambda: len(fake.calls("create")) == 5)
    assert len(fake.calls("token")) == 1 and len(fake.calls("search")) == 5
    assert sorted(lead["Email"] for lead in fake.leads.values()) == [f"p{i}@example.com" for i in range(5)]
