"""`age_of ... at`: an age measured at another time than now (e.g. when the event was sent).

Expectations follow from the documented rule: age = (at-time, else now) - TIME.
"""

import pytest
from mini_spec import mini_connector

from sdk.context import TransformContext
from sdk.errors import InstrumentationError, SpecError

NOW = "2026-12-01T00:00:00Z"


def _conn(check):
    return mini_connector("track", {"body": {"t": "timestamp"}}, checks=[{"when": check, "error": "too old"}])


def _run(conn, event):
    return conn.transform({"type": "track", **event}, {}, TransformContext.at(NOW, seed="s"))


def test_age_is_measured_at_the_given_time():
    conn = _conn({"age_of": "timestamp", "at": "sentAt", "gt": "5y"})
    # Six years before now, but only one year before it was sent: not too old at sending time.
    _run(conn, {"timestamp": "2020-11-01T00:00:00Z", "sentAt": "2021-11-01T00:00:00Z"})
    with pytest.raises(InstrumentationError):
        _run(conn, {"timestamp": "2014-01-01T00:00:00Z", "sentAt": "2021-11-01T00:00:00Z"})


@pytest.mark.parametrize("sent", [None, "", "not a time"])
def test_missing_or_unreadable_at_time_means_now(sent):
    conn = _conn({"age_of": "timestamp", "at": "sentAt", "gt": "5y"})
    event = {"timestamp": "2020-11-01T00:00:00Z"}
    if sent is not None:
        event["sentAt"] = sent
    with pytest.raises(InstrumentationError):
        _run(conn, event)  # six years before now


def test_negative_durations_catch_future_times():
    conn = _conn({"age_of": "timestamp", "lt": "-1h"})
    _run(conn, {"timestamp": "2026-12-01T00:59:00Z"})  # 59 minutes ahead: tolerated
    with pytest.raises(InstrumentationError):
        _run(conn, {"timestamp": "2026-12-01T01:01:00Z"})


def test_unknown_age_option_is_refused_at_load():
    with pytest.raises(SpecError, match="age_of"):
        _conn({"age_of": "timestamp", "since": "sentAt", "gt": "5y"})
