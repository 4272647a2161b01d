"""Upstream drift: which vendor API changes break a connector, scoped to what the connector uses.

* ``footprint``: what a connector depends on (operations, request fields, response fields, auth), built
  from its spec, fixtures and cassettes (``footprint_from_spec``, ``footprint_observed``) or written by hand;
* ``document`` / ``operations`` / ``schema``: vendor descriptions (Swagger 2, OpenAPI 3.0/3.1, JSON or
  YAML, ``$ref`` across files) read into comparable views;
* ``compare``: two versions of a description compared inside a footprint, each change with a severity;
* ``live``: the connector's cassette requests replayed against the vendor, answers diffed semantically;
* ``ci``: the weekly job (reports, one GitHub issue per drifting connector).

Runtime signals from production traffic are recorded by ``pipeline/router/telemetry.py``.
"""
