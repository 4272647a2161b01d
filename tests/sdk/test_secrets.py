"""sdk.secrets: stored requests hold no credential, get exactly their credentials back at send time, and
display redacts every secret value (any length, any encoding a request may carry it in)."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdk.secrets import MARK, MissingSecret, Secrets, redact, seal, secret_values, unseal

KEY = "k9"  # two characters: short secrets are sealed like any other
SECRETS = {"apiKey": KEY, "siteID": "site-1", "password": 'p@ss"w/rd'}


def text(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


REQUEST = {
    "method": "POST",
    "url": f"https://api.example.com/v1/{KEY}/track?key={quote(SECRETS['password'], safe='')}",
    "headers": {"Authorization": basic("site-1", SECRETS["password"]), "X-Key": KEY},
    "params": {"api_key": KEY},
    "json": {
        "api_key": KEY,
        "nested": {"embedded": json.dumps({"token": SECRETS["password"]})},
        KEY: ["a k9 inside", "k9k9"],
        "b64": base64.b64encode(KEY.encode()).decode(),
    },
}


def test_sealed_request_holds_no_secret_in_any_form_and_unseals_exactly():
    sealed = seal(REQUEST, SECRETS)
    stored = text(sealed)
    for value in SECRETS.values():
        assert value not in stored
        assert json.dumps(value)[1:-1] not in stored
        assert quote(value, safe="") not in stored
    assert "c2l0ZS0xOnBAc3MidylyZA" not in stored  # the Basic credential's base64
    assert unseal(sealed, SECRETS) == REQUEST


def test_input_is_not_modified():
    before = json.loads(text(REQUEST))
    seal(REQUEST, SECRETS)
    assert REQUEST == before


def test_an_event_cannot_forge_a_placeholder():
    """Whatever an event carries (marker characters, earlier sealed text) comes back as it was sent and
    never turns into a credential."""
    s = Secrets(SECRETS)
    forged = s.seal({"x": KEY})["x"]  # exactly what a placeholder for the API key looks like
    event = {"props": [forged, MARK, MARK + MARK, f"{MARK}=", "⟧", "\ue100\ue061"]}
    sealed = s.seal(event)
    restored = s.unseal(sealed)
    assert restored == event
    assert KEY not in text(restored)


def test_a_removed_secret_setting_is_a_clear_error():
    sealed = seal({"h": KEY}, SECRETS)
    with pytest.raises(MissingSecret, match="apiKey"):
        unseal(sealed, {"siteID": "site-1"})


def test_rotated_secrets_are_applied_at_send_time():
    sealed = seal(REQUEST, SECRETS)
    rotated = {**SECRETS, "apiKey": "new-key"}
    out = unseal(sealed, rotated)
    assert out["headers"]["X-Key"] == "new-key" and out["json"]["api_key"] == "new-key"


def test_redact_for_display():
    shown = text(redact(seal(REQUEST, SECRETS), SECRETS))
    assert "***" in shown and "Basic ***" in shown
    for value in SECRETS.values():
        assert value not in shown
    # Raw (never sealed) text, e.g. a vendor answer echoing the key:
    assert redact(f'{{"error": "bad key {KEY}"}}', SECRETS) == '{"error": "bad key ***"}'
    # Without the config, placeholders are still hidden:
    assert KEY not in text(redact(seal(REQUEST, SECRETS)))


def test_deep_nesting_does_not_recurse():
    depth = 5000
    deep: dict = {}
    cur = deep
    for _ in range(depth):
        cur["k9"] = {}
        cur = cur["k9"]
    cur["leaf"] = "k9"
    s = Secrets(SECRETS)
    sealed = s.seal(deep)
    restored = s.unseal(sealed)
    node, back = sealed, restored
    for _ in range(depth):
        assert list(node) != ["k9"] and list(back) == ["k9"]
        node, back = next(iter(node.values())), back["k9"]
    assert back == {"leaf": "k9"}


def test_secret_values_collects_structured_settings():
    settings_ = {"apiKey": "a1", "headers": [{"from": "X-Token", "to": "t0k"}], "other": "visible", "n": 0}
    assert secret_values(["apiKey", "headers", "n", "missing"], settings_) == {
        "apiKey": "a1",
        "headers.0.from": "X-Token",
        "headers.0.to": "t0k",
        "n": "0",
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=20,
)
secret_text = st.text(min_size=1, max_size=6).filter(lambda s: MARK not in s and "⟧" not in s)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, secrets=st.dictionaries(st.sampled_from(["a", "b", "c"]), secret_text, max_size=3))
def test_unseal_inverts_seal_and_nothing_leaks(value, secrets):
    s = Secrets(secrets)
    sealed = s.seal(value)
    assert s.unseal(sealed) == value
    for secret in secrets.values():
        if all(ord(c) < 0xE000 or ord(c) > 0xF8FF for c in secret):  # not made of placeholder characters
            assert not any(secret in t for t in strings(sealed))


def strings(value) -> list[str]:
    """Every string in a JSON value, object keys included (secrets live in strings, not in syntax)."""
    out, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            out.extend(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=json_values,
    secrets=st.dictionaries(st.sampled_from(["a", "b"]), secret_text, max_size=2),
    ascii_only=st.booleans(),
)
def test_unsealing_json_text_equals_unsealing_values(value, secrets, ascii_only):
    """The router unseals the JSON text Postgres returns (placeholders replaced in the text); the result
    must be what unsealing the parsed values gives, whatever the secrets contain (quotes, backslashes,
    control characters) and whether the text writes non-ASCII characters as escapes."""
    s = Secrets(secrets)
    stored = json.dumps(s.seal(value), ensure_ascii=ascii_only)
    assert json.loads(s.unseal_json(stored)) == value


def test_unsealing_postgres_jsonb_text():
    s = Secrets(SECRETS)
    sealed = s.seal(REQUEST)
    pg_text = json.dumps(sealed, ensure_ascii=False, separators=(", ", ": "))  # how jsonb::text looks
    assert json.loads(s.unseal_json(pg_text)) == REQUEST
