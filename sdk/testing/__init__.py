"""Contract-test harness: pytest plugin, hypothesis strategies, case and cassette helpers.

Modules (all importable by contributors writing extra tests for their connector):

``plugin``      pytest plugin ``sluice`` (entry point): fixtures ``sluice_connector``/``sluice_cases``,
                options ``--sluice-only`` and ``--sluice-report`` (per-check counts for ``sluice certify``)
``strategies``  hypothesis ``events(event_type, base=None)`` and ``FUZZ_SETTINGS`` (200, derandomized)
``cases``       fixture loading (``load_cases``), secret redaction, cassette building and reading
``replay``      ``replay_case`` (httpx inside a vcrpy cassette, network blocked) and the respx error scenarios
``checks``      well-formedness of produced requests and of batching
``lint``        ``lint_integration`` (what ``sluice validate`` prints)

The generic suite using all of this is ``contract_tests/test_contract.py``.
"""
