"""`sluice sink` prints what it receives, one JSON line per request, and answers as told."""

import io
import json
import threading

import httpx

from pipeline.devsink import serve


def test_sink_prints_each_request_and_answers():
    out = io.StringIO()
    server = serve("127.0.0.1", 0, out, status=202)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        port = server.server_address[1]
        r = httpx.post(f"http://127.0.0.1:{port}/hook", json={"event": "Signed Up", "userId": "u1"})
        assert r.status_code == 202
        r = httpx.put(f"http://127.0.0.1:{port}/x", content=b"not json")
        assert r.status_code == 202
    finally:
        server.shutdown()
        server.server_close()
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines == [
        {"method": "POST", "path": "/hook", "body": {"event": "Signed Up", "userId": "u1"}},
        {"method": "PUT", "path": "/x", "body": "not json"},
    ]
