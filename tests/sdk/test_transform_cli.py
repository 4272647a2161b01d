"""`sluice transform --jsonl`: the interface peer_check and users drive."""

import json
import subprocess
import sys

from sdk.cli.transform import transform_line


def test_unknown_destination_answers_error_and_goes_on():
    lines = [
        {"destination": "no-such-thing", "config": {}, "event": {"type": "track"}},
        {
            "destination": "WEBHOOK",
            "config": {"webhookUrl": "https://h.example/x"},
            "event": {"type": "track", "event": "e", "userId": "u"},
            "now": "2024-01-01T00:00:00Z",
        },
        "not json",
    ]
    inp = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    p = subprocess.run(
        [sys.executable, "-m", "sdk.cli.transform_main"],
        input=inp,
        capture_output=True,
        text=True,
        check=True,
    )
    outs = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(outs) == 3
    assert outs[0]["error"]["type"] == "unknown_destination"
    assert outs[1]["requests"][0]["url"] == "https://h.example/x"
    assert outs[2]["error"]["type"] == "invalid_input"


def test_typed_error_shape():
    out = transform_line(json.dumps({"destination": "webhook", "config": {}, "event": {"type": "track"}}))
    assert out["error"]["type"] == "configuration_error"
    assert out["error"]["status"] == 400
    assert "webhookUrl" in out["error"]["message"]
