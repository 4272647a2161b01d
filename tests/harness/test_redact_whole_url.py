"""A secret that is a whole URL (an incoming-webhook URL) is redacted whole in cassettes; a secret inside a
URL (a token in the path) is replaced where it stands. Expectations written by hand from Redactor.url's
comment."""

from sdk.testing.cases import PLACEHOLDER, Redactor


def test_a_webhook_url_that_is_the_secret_is_redacted_whole():
    hook = "https://hooks.slack.com/services/T0/B0/abcdef"
    assert Redactor([hook]).url(hook) == PLACEHOLDER


def test_a_secret_inside_the_path_is_replaced_in_place():
    out = Redactor(["tok-123456"]).url("https://api.example.com/v1/tok-123456/events?x=1")
    assert out == f"https://api.example.com/v1/{PLACEHOLDER}/events?x=1"


def test_urls_without_secrets_are_unchanged():
    url = "https://api.example.com/v1/events?x=1"
    assert Redactor(["nothing-here"]).url(url) == url
