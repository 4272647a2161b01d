"""``render`` with ``in`` (the template reads only the given object) and ``escape: html`` (Handlebars
escaping: ``{{ x }}`` escaped, ``{{{ x }}}`` raw), for user-written message templates (Slack).

Expectations are written by hand from the directive's description in docs/spec-language.md and the
Handlebars guide (https://handlebarsjs.com/guide/expressions.html#html-escaping).
"""

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import InstrumentationError
from sdk.spec.model import DestinationSpec


@pytest.fixture(params=["generated", "closures"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SLUICE_CODEGEN", "1" if request.param == "generated" else "0")
    return request.param


def _render(value: dict, settings: dict, event: dict) -> str:
    spec = {
        "spec_version": 2,
        "name": "demo",
        "display_name": "Demo",
        "settings": {
            "type": "object",
            "properties": {"template": {"type": "string"}, "secret": {"type": "string"}},
        },
        "event_types": ["track", "identify"],
        "endpoints": {"e": {"url": "https://api.demo.io/v1/messages"}},
        "mappings": {t: {"endpoint": "e", "body": {"text": value}} for t in ("track", "identify")},
    }
    conn = Connector(DestinationSpec.model_validate(spec))
    (req,) = conn.transform(event, settings, TransformContext.at("2024-05-01T12:00:00Z"))
    return req.json_body["text"]


SCOPE = {"merge": ["traits", {"object": {"name": "traits.first", "newline": {"value": "\n"}}}]}


def test_the_template_reads_the_scope_object_only(backend):
    text = _render(
        {"render": "settings.template", "in": SCOPE},
        {
            "template": "{{name}}:{{plan}}|{{ settings.secret }}|{{ userId }}|{{ traits.plan }}",
            "secret": "s3",
        },
        {"type": "identify", "userId": "u1", "traits": {"first": "Ada", "plan": "pro"}},
    )
    # settings, the event's userId and `traits.` are not keys of the scope: they render empty.
    assert text == "Ada:pro|||"


def test_formats_and_alternatives_work_inside_the_scope(backend):
    text = _render(
        {"render": "settings.template", "in": SCOPE},
        {"template": "{{ plan | upper }} {{ missing ?? name }}"},
        {"type": "identify", "traits": {"first": "Ada", "plan": "pro"}},
    )
    assert text == "PRO Ada"


def test_html_escape_like_handlebars_and_triple_braces_raw(backend):
    text = _render(
        {"render": "settings.template", "in": SCOPE, "escape": "html"},
        {"template": "{{plan}} / {{{plan}}}{{newline}}end"},
        {"type": "identify", "traits": {"plan": "<b>A & 'B' = \"C\"</b>`"}},
    )
    assert text == (
        "&lt;b&gt;A &amp; &#x27;B&#x27; &#x3D; &quot;C&quot;&lt;/b&gt;&#x60; / <b>A & 'B' = \"C\"</b>`\nend"
    )


def test_without_escape_values_are_inserted_as_they_are(backend):
    text = _render(
        {"render": "settings.template", "in": SCOPE},
        {"template": "{{plan}}"},
        {"type": "identify", "traits": {"plan": "A & B"}},
    )
    assert text == "A & B"


def test_a_scope_that_is_not_an_object_reads_as_empty(backend):
    text = _render(
        {"render": "settings.template", "in": "traits.plan"},
        {"template": "[{{ plan }}]"},
        {"type": "identify", "traits": {"plan": "pro"}},
    )
    assert text == "[]"


def test_handlebars_block_helpers_are_an_instrumentation_error_naming_the_field(backend):
    with pytest.raises(InstrumentationError, match="template from the settings cannot be read"):
        _render(
            {"render": "settings.template", "in": SCOPE, "escape": "html"},
            {"template": "{{#if plan}}yes{{/if}}"},
            {"type": "identify", "traits": {"plan": "pro"}},
        )


def test_escape_takes_html_only():
    with pytest.raises(Exception, match="escape"):
        _render({"render": "settings.template", "escape": "xml"}, {"template": "x"}, {"type": "track"})
