"""The gateway's fast JSON path (orjson) must accept, reject and store exactly what the stdlib path did.

Pure functions, no database: differential checks against ``json`` plus the edge cases where orjson
and the stdlib disagree (big integers, BOM, surrogates, overflowing numbers, deep nesting).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.gateway.events import EventError, _iso_us, _time, iso, normalise, parse_time
from pipeline.gateway.wire import copy_lines, decode_body

PREFIX = b"web\t"


def std(body: bytes):
    return json.loads(body)


def same(a, b) -> bool:
    """Equal values with equal types all the way down (1 and 1.0 are different here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def unescape_copy(line: bytes) -> bytes:
    """Undo COPY text escaping of a JSON column (the only escape it needs is the backslash)."""
    return line.replace(b"\\\\", b"\\")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5), st.booleans())
def test_fast_decode_equals_the_stdlib(payload, ascii_only):
    body = json.dumps(payload, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = std(body)
    except ValueError:
        with pytest.raises(EventError):
            decode_body(body)
        return
    got, _fast = decode_body(body)
    assert same(got, expected)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([b'{"a":', b"[", b'{"a":"', b"", b'{"a":1e3']))
def test_arbitrary_bytes_are_accepted_or_refused_like_the_stdlib(tail, head):
    body = head + tail
    try:
        expected = std(body)
    except (ValueError, RecursionError):
        with pytest.raises(EventError, match="not valid JSON"):
            decode_body(body)
        return
    got, _fast = decode_body(body)
    assert same(got, expected)


@pytest.mark.parametrize(
    "literal",
    [b"123456789012345678901234567890", b"-9223372036854775809", b"18446744073709551616", b"9" * 40],
)
def test_integers_beyond_64_bits_stay_exact(literal):
    body = b'{"userId":"u","n":' + literal + b"}"
    payload, fast = decode_body(body)
    assert not fast and payload["n"] == int(literal)
    line = copy_lines([payload], PREFIX, 4096, fast)
    assert literal in line


def test_bodies_orjson_refuses_but_the_stdlib_accepts_still_work():
    bom, fast = decode_body(b'\xef\xbb\xbf{"a":1}')
    assert bom == {"a": 1} and not fast
    utf16, fast = decode_body('{"a":"é"}'.encode("utf-16"))
    assert utf16 == {"a": "é"} and not fast


def test_overflowing_number_is_a_400_not_a_poisoned_commit():
    payload, fast = decode_body(b'{"x":1e400}')
    assert payload["x"] == float("inf") and not fast
    with pytest.raises(EventError, match="not finite") as e:
        copy_lines([payload], PREFIX, 4096, fast)
    assert e.value.status == 400


def test_lone_surrogate_is_a_400():
    payload, fast = decode_body(b'{"x":"\\ud800"}')
    assert not fast
    with pytest.raises(EventError, match="unpaired UTF-16 surrogate"):
        copy_lines([payload], PREFIX, 4096, fast)


@pytest.mark.parametrize("fast", [True, False])
def test_nul_is_refused_but_an_escaped_backslash_before_u0000_is_stored(fast):
    with pytest.raises(EventError, match="NUL"):
        copy_lines([{"a": "x\x00y"}], PREFIX, 4096, fast)
    with pytest.raises(EventError, match="NUL"):
        copy_lines([{"a": "\\\x00"}], PREFIX, 4096, fast)  # backslash, then a real NUL
    ev = {"a": "C:\\u0000dir", "b": "\\\\u0000"}  # backslashes followed by the text u0000
    line = copy_lines([ev], PREFIX, 4096, fast)
    assert line.startswith(PREFIX) and line.endswith(b"\n")
    assert json.loads(unescape_copy(line[len(PREFIX) : -1])) == ev


@pytest.mark.parametrize("fast", [True, False])
def test_copy_lines_round_trip_and_size_limit_in_bytes(fast):
    events = [{"a": 'quote " back \\ tab \t nl \n', "u": "é€😀"}, {"b": 1.5, "c": None, "d": [True]}]
    data = copy_lines(events, PREFIX, 4096, fast)
    lines = data.split(b"\n")[:-1]
    assert len(lines) == 2
    for line, ev in zip(lines, events, strict=True):
        assert line.startswith(PREFIX) and b"\t" not in line[len(PREFIX) :]
        assert json.loads(unescape_copy(line[len(PREFIX) :])) == ev
    # 2,000 three-byte characters: under 4096 + slack in characters, over it in bytes.
    with pytest.raises(EventError, match="larger than 4096 bytes") as e:
        copy_lines([{"ok": "x"}, {"p": "€" * 2000}], PREFIX, 4096, fast)
    assert e.value.status == 413 and "event 1" in e.value.message


@pytest.mark.parametrize("depth", [65, 600, 950])
def test_nesting_beyond_the_documented_depth_is_a_400_on_both_paths(depth):
    # Issue 11 item 5: events nested 600-1020 deep were accepted (then broke batching) or gave a 500.
    # Depth counts the event object itself: {"a": [[...]]} with `depth` brackets is depth + 1 levels.
    body = b'{"a":' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b"}"
    for fast_path in (True, False):
        payload = json.loads(body)
        with pytest.raises(EventError) as e:
            copy_lines([payload], PREFIX, 100_000, fast_path)
        assert e.value.status == 400 and "64 levels" in e.value.message


def test_nesting_at_the_documented_depth_is_kept_exactly():
    depth = 64  # the documented maximum (pipeline/README.md), the event object being level 1
    body = b'{"a":' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b"}"
    payload, fast = decode_body(body)
    assert fast
    line = copy_lines([payload], PREFIX, 100_000, fast)
    assert json.loads(unescape_copy(line[len(PREFIX) : -1])) == json.loads(body)
    # Many brackets side by side are not depth: 200 sibling objects at level 2 pass.
    wide = {"props": [{"i": i} for i in range(200)]}
    assert copy_lines([wide], PREFIX, 100_000, True)


NOW = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)))
def test_fast_iso_matches_iso(value):
    aware = value.replace(tzinfo=dt.UTC)
    us = (aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert _iso_us(us) == iso(aware)


timestamp_like = st.from_regex(r"\A[0-9W+\-:.,T ]{0,26}Z\Z", fullmatch=True) | st.datetimes().map(
    lambda d: d.isoformat(timespec="milliseconds") + "Z"
)


@settings(max_examples=500, deadline=None)
@given(timestamp_like)
def test_time_shortcut_matches_parse_time(value):
    try:
        expected = parse_time(value, "sentAt", "t")
    except EventError as e:
        with pytest.raises(EventError) as got:
            _time(value, "sentAt", "t")
        assert got.value.message == e.message
        return
    assert _time(value, "sentAt", "t") == expected


def test_skew_correction_values_and_extremes():
    def ts(orig, sent):
        ev = {"userId": "u", "event": "E", "originalTimestamp": orig, "sentAt": sent}
        out = normalise(ev, etype="track", received=NOW, received_iso=iso(NOW), where="t")
        return out["timestamp"]

    assert ts("2020-01-01T00:00:00.000Z", "2020-01-01T00:00:10.500Z") == "2024-05-01T11:59:49.623Z"
    assert ts("2020-01-01T01:00:00+01:00", "2020-01-01T00:00:01Z") == "2024-05-01T11:59:59.123Z"
    # a client clock that puts the event before 1970 still gets the old (datetime) formatting
    assert ts("1900-01-01T00:00:00Z", "2024-05-01T12:00:00.123456Z") == "1900-01-01T00:00:00.000Z"
    ev = {"userId": "u", "event": "E", "originalTimestamp": "1969-12-31T23:59:59.5Z"}
    assert normalise(ev, etype="track", received=NOW, received_iso="x", where="t")["timestamp"] == (
        "1969-12-31T23:59:59.500Z"
    )
    # too far apart to represent: a 400 naming the fields, not an internal error
    with pytest.raises(EventError, match="sentAt and originalTimestamp"):
        ts("0001-01-01T00:00:00Z", "9999-01-01T00:00:00Z")
