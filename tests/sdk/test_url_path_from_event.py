"""A value an event puts into a URL path must not climb to another resource of the vendor's API.

Salesforce names the object to write in ``context.externalId`` (``Salesforce-<object>``) and the object
lands in the path ``/sobjects/<object>``; an event saying ``Salesforce-../../apexrest/x`` would otherwise
send the destination's bearer token to a different endpoint. Dot segments (plain or percent-encoded, per
RFC 3986 section 5.2.4 they remove the segment before them) in a URL rendered per event are refused with a
typed error, for every connector; ordinary ids, and dots inside a segment, pass.
"""

import pytest
from mini_spec import mini_connector

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import InstrumentationError

NOW = TransformContext.at("2024-05-01T12:00:00Z")


def _connector() -> Connector:
    things = {"url": "https://api.demo.io/v1/things/{{ properties.thing }}/events"}
    return mini_connector(
        "track", {"endpoint": "things", "body": {"name": "event"}}, endpoints={"things": things}
    )


def _event(thing: str) -> dict:
    return {"type": "track", "event": "Opened", "properties": {"thing": thing}}


@pytest.mark.parametrize("thing", ["..", ".", "%2e%2E", "a/../../admin", "x/%2E"])
def test_dot_segments_from_the_event_are_refused(thing):
    with pytest.raises(InstrumentationError, match="segment"):
        _connector().transform(_event(thing), {}, NOW)


@pytest.mark.parametrize("thing", ["t-42", "v1.2", "..hidden", "a.b.c"])
def test_ordinary_values_pass(thing):
    (req,) = _connector().transform(_event(thing), {}, NOW)
    assert req.url == f"https://api.demo.io/v1/things/{thing}/events"


def test_salesforce_object_names_from_the_event_must_be_api_names():
    from sdk.registry import load_connector

    conn = load_connector("salesforce")
    config = {"userName": "u@example.com", "password": "pw", "initialAccessToken": "tok"}
    event = {
        "type": "identify",
        "userId": "u1",
        "traits": {"email": "a@example.com", "lastName": "Doe"},
        "context": {"externalId": [{"type": "Salesforce-../../apexrest/steal", "id": "001"}]},
    }
    with pytest.raises(InstrumentationError, match="object API name"):
        conn.transform(event, config, NOW)
    event["context"]["externalId"][0]["type"] = "Salesforce-Contact"
    (req,) = conn.transform(event, config, NOW)
    assert "/sobjects/Contact/001" in req.url
