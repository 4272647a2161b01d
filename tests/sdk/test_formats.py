"""Value formats: each converts what it should and rejects what it cannot with a FormatError."""

import hashlib

import pytest

from sdk.mapping import formats


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("string", 12.0, "12"),
        ("string", True, "true"),
        ("string", {"a": 1}, '{"a":1}'),
        ("number", "42", 42),
        ("number", "4.5", 4.5),
        ("integer", "7.9", 7),
        ("boolean", "yes", True),
        ("boolean", 0, False),
        ("iso8601", "2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00.000Z"),
        ("iso8601", 1714564800, "2024-05-01T12:00:00.000Z"),
        ("epoch_ms", "2024-05-01T12:00:00.123Z", 1714564800123),
        ("epoch_s", "2024-05-01T12:00:00Z", 1714564800),
        ("epoch_ms", 1714564800123, 1714564800123),
        ("lower", "MiXeD", "mixed"),
        ("trim", "  x  ", "x"),
        ("flatten", {"a": {"b": 1, "c": [1, 2]}}, {"a.b": 1, "a.c.0": 1, "a.c.1": 2}),
        ("json", [1, "a"], '[1,"a"]'),
    ],
)
def test_format_converts(fmt, value, expected):
    _, fn, _ = formats.resolve(fmt)
    assert fn(value, None) == expected


def test_sha256_hashes_exact_text_and_keeps_hashed_ones():
    """Normalising (trim, lower) is a separate, explicit step: `traits.email | trim | lower | sha256`."""
    assert formats.sha256("Person@Example.com") == hashlib.sha256(b"Person@Example.com").hexdigest()
    assert formats.sha256(" a ") == hashlib.sha256(b" a ").hexdigest()
    digest = hashlib.sha256(b"x").hexdigest()
    assert formats.sha256(digest.upper()) == digest
    assert formats.sha256(["a", "b"]) == [hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()]


@pytest.mark.parametrize("name", sorted(formats.FORMATS))
def test_every_format_has_a_documented_example_that_holds(name):
    f = formats.FORMATS[name]
    assert f.doc and f.example is not None, f"format {name} needs a description and an example"
    value, arg, expected = f.example
    assert f.fn(value, arg) == expected


@pytest.mark.parametrize(
    ("fmt", "value"),
    [("number", "abc"), ("number", True), ("iso8601", "not a date"), ("boolean", "maybe"), ("number", "nan")],
)
def test_format_rejects(fmt, value):
    _, fn, _ = formats.resolve(fmt)
    with pytest.raises(formats.FormatError):
        fn(value, None)


def test_unknown_format_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown format 'nope'.*known:"):
        formats.resolve("nope")


def test_format_with_argument():
    _, fn, arg = formats.resolve({"truncate": 3})
    assert fn("abcdef", arg) == "abc"
    _, fn, arg = formats.resolve({"map": {"Male": "M"}})
    assert fn("Male", arg) == "M"
    assert fn("Other", arg) == "Other"


def test_urlencode_escapes_as_urllib_quote_with_nothing_safe() -> None:
    """The ASCII fast path (one scan, then the escapes) must encode exactly as quote(s, safe="")."""
    import random
    import urllib.parse

    from sdk.mapping.formats import urlencode

    for c in range(128):
        assert urlencode(chr(c)) == urllib.parse.quote(chr(c), safe=""), repr(chr(c))
    rng = random.Random(7)
    for _ in range(2000):
        s = "".join(chr(rng.randrange(0, 300)) for _ in range(rng.randrange(0, 16)))
        assert urlencode(s) == urllib.parse.quote(s, safe=""), repr(s)
    assert urlencode("ada@example.com") == "ada%40example.com"
    assert urlencode(12.0) == "12"
