"""Response classification: defaults, Retry-After, and spec body rules."""

import pytest

from sdk.classify import Outcome, ResponseRule, classify_exception, classify_response, parse_retry_after


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (204, Outcome.SUCCESS),
        (400, Outcome.ABORT),
        (401, Outcome.ABORT),
        (404, Outcome.ABORT),
        (408, Outcome.RETRY),
        (413, Outcome.ABORT),
        (429, Outcome.THROTTLE),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_defaults(status, outcome):
    assert classify_response(status, {}, b"").outcome is outcome


def test_retry_after_seconds_and_date():
    assert classify_response(429, {"Retry-After": "7"}).retry_after == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("garbage") is None


def test_body_rule_overrides_status():
    rules = [
        ResponseRule.model_validate(
            {
                "when": {"status": [200], "body_path": "error.code", "equals": "rate"},
                "outcome": "throttle",
                "reason": "vendor says slow down",
            }
        )
    ]
    c = classify_response(200, {}, b'{"error": {"code": "rate"}}', rules)
    assert (c.outcome, c.reason) == (Outcome.THROTTLE, "vendor says slow down")
    assert classify_response(200, {}, b'{"ok": true}', rules).outcome is Outcome.SUCCESS


def test_body_contains_rule_on_4xx():
    rules = [
        ResponseRule.model_validate(
            {"when": {"status_class": "4xx", "body_contains": "temporarily"}, "outcome": "retry"}
        )
    ]
    assert classify_response(400, {}, "temporarily unavailable", rules).outcome is Outcome.RETRY
    assert classify_response(400, {}, "bad field", rules).outcome is Outcome.ABORT


def test_network_errors_retry():
    c = classify_exception(TimeoutError("read timed out"))
    assert c.outcome is Outcome.RETRY and "TimeoutError" in c.reason
