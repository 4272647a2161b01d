"""``product``: the numbers of a list multiplied (a revenue is a price times a quantity).

Expectations are worked out by hand from the directive's rule in ``sdk/mapping/expressions.py``.
"""

import pytest
from mini_spec import mini_connector

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import InstrumentationError, SpecError


def _connector(body: dict) -> Connector:
    return mini_connector("track", {"body": body})


def _body(conn: Connector, properties: dict) -> dict:
    event = {"type": "track", "event": "Product Added", "properties": properties}
    (req,) = conn.transform(event, {}, TransformContext.at("2024-05-01T12:00:00Z"))
    return req.json_body


PRICE_TIMES_QUANTITY = {"revenue": {"product": ["properties.price", "properties.quantity"]}}


def test_multiplies_numbers_and_numeric_text():
    conn = _connector(PRICE_TIMES_QUANTITY)
    assert _body(conn, {"price": "19", "quantity": "2"}) == {"revenue": 38}
    assert _body(conn, {"price": 2.5, "quantity": 3}) == {"revenue": 7.5}


def test_missing_factors_are_left_out_and_no_factor_gives_nothing():
    conn = _connector(PRICE_TIMES_QUANTITY)
    assert _body(conn, {"price": 4, "quantity": None}) == {"revenue": 4}
    assert _body(conn, {}) == {}


def test_of_reads_each_element():
    conn = _connector({"weight": {"product": "properties.boxes", "of": "item.factor"}})
    assert _body(conn, {"boxes": [{"factor": 2}, {"factor": "1.5"}, {"other": 1}]}) == {"weight": 3}


def test_a_non_number_is_an_instrumentation_error_naming_the_field():
    conn = _connector(PRICE_TIMES_QUANTITY)
    with pytest.raises(InstrumentationError, match="revenue"):
        _body(conn, {"price": "cheap", "quantity": 2})


def test_factors_are_not_consumed_from_rest():
    conn = _connector(
        {"revenue": {"product": ["properties.price", "properties.quantity"]}, "props": {"rest": "properties"}}
    )
    assert _body(conn, {"price": 2, "quantity": 2}) == {"revenue": 4, "props": {"price": 2, "quantity": 2}}


def test_unknown_option_is_refused_at_load():
    with pytest.raises(SpecError, match="product"):
        _connector({"revenue": {"product": ["properties.price"], "times": 2}})
