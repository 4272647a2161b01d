"""Contract-test harness: pytest plugin, hypothesis strategies, case and cassette helpers.

Importable by contributors writing extra tests for their connector::

    from sdk.testing.strategies import events
    from sdk.testing.cases import load_cases
"""
