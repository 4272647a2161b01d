"""``sluice new <name>``: a starting integration that compiles, and that ``sluice validate`` refuses until the
placeholders are filled in.

The spec compiles at once, so a contributor can run ``sluice transform`` while working; ``sluice validate``
(and so the contract suite and certification) lists every placeholder left (TODO text in fixtures and the
README, example.com links and URLs), so nothing half-written can be certified by accident.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sdk.errors import SpecError

SPEC_TEMPLATE = """\
# {display} destination. The language: docs/spec-language.md. Check with `sluice validate {name}`.
# Try it: sluice transform -d {name} -c '{{"apiKey": "k"}}' \\
#           -e '{{"type": "track", "event": "x", "userId": "u"}}'

spec_version: 2
name: {name}                  # must equal the folder name
display_name: {display}
aliases: []                   # other names users may type (case-insensitive)
rudder_type: {rudder}         # the RudderStack destination type this replaces (configs migrate unchanged)
description: Sends events to {display}.
vendor:
  api_version: "v1"           # the vendor API version these mappings follow
  docs:                       # links to the vendor docs you used (replace the placeholder)
    - https://example.com/{name}/api-docs

# Destination settings as JSON Schema. Use RudderStack's config key names. Mark credentials `secret: true`:
# they are redacted from cassettes and logs, and the harness fails if one leaks.
settings:
  type: object
  required: [apiKey]
  properties:
    apiKey: {{type: string, secret: true, description: "{display} API key"}}

event_types: [track]          # add more types as you map them (each needs a fixture)

endpoints:
  default:
    method: POST
    url: "https://api.example.com/v1/events"      # may use {{{{ settings.x }}}} / {{{{ vars.x }}}}
    body_format: json                             # json | json_array | form | text | none
    # openapi_operation: "POST /v1/events"        # with `openapi:` below, bodies are validated against it

auth:
  type: header                # none | basic | bearer | header | query
  name: Authorization
  value: "Bearer {{{{ settings.apiKey }}}}"

# openapi:
#   document: openapi/{name}.json   # from `sluice openapi extract <vendor-file> --operation ... --out ...`

# Values computed once per event, readable as let.<name> (docs/spec-language.md#let).
let:
  user_id: userId ?? anonymousId | string

checks:                       # rules an event must pass (error | config_error | unsupported | drop)
  - when: {{absent: let.user_id}}
    error: "{display} needs a userId or anonymousId; send one"

mappings:
  track:
    endpoint: default
    body:                     # paths, `a ?? b | format`, templates, directives (docs/spec-language.md)
      event: {{from: event, required: true, error: "track events need an event name; set `event`"}}
      user_id: let.user_id
      time: {{from: [timestamp, originalTimestamp], format: [epoch_ms]}}
      properties: {{from: properties, default: {{}}}}

# contract:                   # vendor-required body fields the harness checks on every produced request
#   required:
#     default: [event, user_id]
"""

FIXTURE_TEMPLATE = {
    "description": "TODO: say what this case shows (e.g. a basic track call)",
    "config": {"apiKey": "test-api-key-{name}"},
    "event": {
        "type": "track",
        "event": "Order Completed",
        "userId": "user-1",
        "messageId": "msg-1",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "properties": {"revenue": 10.5, "currency": "EUR"},
    },
    "now": "2024-05-01T12:00:00Z",
    "response": {
        "status": 200,
        "headers": {"Content-Type": "application/json"},
        "body": "TODO: paste the vendor's documented success response body",
    },
}

README_TEMPLATE = """\
# {display}

TODO: what this destination does and which vendor API it calls.

## Settings
| key | meaning |
|---|---|
| `apiKey` | TODO (secret) |

## Event types
TODO: how each supported event type is mapped.

## Quirks
TODO: vendor behaviour worth knowing (limits, error answers, ids).

## Vendor documentation
- TODO: link

## Workflow
1. Edit `spec.yaml` (the language: `docs/spec-language.md`; a `mapper.py` only for what the spec cannot say);
   `sluice validate {name}` lists what is still a placeholder.
2. Write one `fixtures/<case>.json` per behaviour (fake credentials, documented vendor response).
3. `sluice cassettes build {name}`, review the cassettes, then `pytest contract_tests --sluice-only {name}`.
4. `sluice certify {name}`.
"""


def scaffold(name: str, integrations: Path, cassettes: Path | None = None) -> list[Path]:
    """Create ``integrations/<name>/`` and ``cassettes/<name>/``; never overwrites."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SpecError(
            f"integration name {name!r} must be lower-case letters, digits and _ (start with a letter)"
        )
    folder = integrations / name
    if folder.exists():
        raise SpecError(f"{folder} already exists; pick another name or edit it directly")
    cassettes = cassettes or integrations.resolve().parent / "cassettes"
    display = name.replace("_", " ").title()
    fmt = {"name": name, "display": display, "rudder": name.upper()}
    (folder / "fixtures").mkdir(parents=True)
    written = []
    spec = folder / "spec.yaml"
    spec.write_text(SPEC_TEMPLATE.format(**fmt))
    fixture = folder / "fixtures" / "track_basic.json"
    fx = json.loads(json.dumps(FIXTURE_TEMPLATE).replace("{name}", name))
    fixture.write_text(json.dumps(fx, indent=2) + "\n")
    readme = folder / "README.md"
    readme.write_text(README_TEMPLATE.format(**fmt))
    cdir = cassettes / name
    cdir.mkdir(parents=True, exist_ok=True)
    keep = cdir / ".gitkeep"
    keep.touch()
    written += [spec, fixture, readme, keep]
    return written


_PLACEHOLDER_URL = re.compile(r"https?://(?:[a-z0-9-]+\.)*example\.com\b", re.IGNORECASE)


def leftovers(folder: Path) -> list[str]:
    """Placeholders of the scaffold still in an integration folder, each with what to do about it."""
    found: list[str] = []
    rel = folder.name
    readme = folder / "README.md"
    if readme.exists() and "TODO" in readme.read_text():
        found.append(
            f"{rel}/README.md still has TODO sections: describe the destination, settings and quirks"
        )
    spec = folder / "spec.yaml"
    if spec.exists():
        text = spec.read_text()
        for url in sorted(set(_PLACEHOLDER_URL.findall(text))):
            found.append(
                f"{rel}/spec.yaml still points at the placeholder {url}: use the vendor's API URL and docs"
            )
    for fx in sorted((folder / "fixtures").glob("*.json")):
        if "TODO" in fx.read_text():
            found.append(
                f"{rel}/fixtures/{fx.name} still has TODO values: write the description and the vendor's "
                "documented response"
            )
    return found
