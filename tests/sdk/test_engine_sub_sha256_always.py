"""``sub`` (regular-expression replacement) and ``sha256('always')``: identifiers normalised and hashed the
way ad platforms match them (Meta's customer-information rules, TikTok's hashed user properties).

Expected hashes are computed here with hashlib from the normalised text a person derived from the vendor
rules, not taken from the engine's output.
"""

import hashlib

import pytest
from mini_spec import mini_connector

from sdk.context import TransformContext
from sdk.errors import InstrumentationError
from sdk.mapping import formats


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_sub_replaces_every_match_and_leaves_non_text_alone():
    assert formats.sub("0049 (151) 2", ["^0+|\\D", ""]) == "491512"
    assert formats.sub("a.b.c", [".", "-"]) == "-----"  # a regular expression, not text
    assert formats.sub("a.b", ["\\.", "-"]) == "a-b"
    assert formats.sub(12, ["2", "3"]) == 12
    assert formats.sub(["a-1", "b-2"], ["-", ""]) == ["a1", "b2"]  # per element


def test_sub_replacement_is_literal_text():
    assert formats.sub("ab", ["(a)", "\\1x"]) == "\\1xb"


@pytest.mark.parametrize("arg", [None, "x", ["only-one"], ["a", "b", "c"]])
def test_sub_needs_a_pattern_and_a_replacement(arg):
    with pytest.raises(formats.FormatError, match="two texts"):
        formats.sub("text", arg)


def test_sub_with_a_bad_pattern_is_a_format_error():
    with pytest.raises(formats.FormatError, match="regular expression"):
        formats.sub("text", ["(", ""])


def test_sha256_leaves_hex_digests_alone_unless_always():
    digest = _h("hello")
    assert formats.sha256(digest) == digest
    assert formats.sha256(digest.upper()) == digest
    assert formats.sha256(digest, "always") == _h(digest)
    assert formats.sha256("a@b.c", "always") == _h("a@b.c")
    assert formats.sha256([digest, "x"], "always") == [_h(digest), _h("x")]


def test_sha256_refuses_an_unknown_mode():
    with pytest.raises(formats.FormatError, match="always"):
        formats.sha256("x", "twice")


def _connector(body):
    return mini_connector("track", {"body": body})


def test_normalise_and_hash_in_a_spec():
    conn = _connector(
        {
            "ph": "context.traits.phone | digits | sub('^0+', '') | sha256",
            "ct": {"from": "context.traits.city", "format": ["lower", {"sub": ["[^a-z]", ""]}, "sha256"]},
            "ids": "context.traits.ids | sha256('always')",
        }
    )
    event = {
        "type": "track",
        "event": "Go",
        "context": {"traits": {"phone": "0044 20 7946 0000", "city": "New York", "ids": [_h("a"), "b"]}},
    }
    (req,) = conn.transform(event, {}, TransformContext.at("2024-05-01T12:00:00Z"))
    assert req.json_body == {"ph": _h("442079460000"), "ct": _h("newyork"), "ids": [_h(_h("a")), _h("b")]}


def test_a_bad_sub_argument_is_an_instrumentation_error_naming_the_field():
    conn = _connector({"x": {"from": "event", "format": [{"sub": "no-list"}]}})
    with pytest.raises(InstrumentationError, match="x"):
        conn.transform({"type": "track", "event": "Go"}, {}, TransformContext.at("2024-05-01T12:00:00Z"))
