"""Regression: a URL's own query string must survive when the request also has params."""

import httpx
import respx

from sdk.delivery import send
from sdk.request import VendorRequest


@respx.mock
def test_url_query_and_params_are_merged():
    route = respx.get("https://hooks.example/x").mock(return_value=httpx.Response(200))
    req = VendorRequest(method="GET", url="https://hooks.example/x?h=1", params={"r": "c", "flag": True})
    with httpx.Client() as client:
        assert send(client, req).status == 200
    sent = route.calls.last.request.url
    assert dict(sent.params) == {"h": "1", "r": "c", "flag": "true"}
