"""Fixtures shared by the whole suite.

``pg_server_dsn`` (session): a real Postgres server. CI exports ``SLUICE_TEST_DATABASE_URL`` (see
``.ci/start_postgres.sh``); otherwise the embedded local Postgres in ``.sluice/test`` is started (and left
running for the next run, which makes repeated local runs fast).

``pg_dsn`` (per test): a brand-new empty database on that server, dropped after the test, so tests never
see each other's rows and can run in parallel under pytest-xdist.

``redis_server`` (per test): a real ``redis-server`` on a free loopback port (fails, never skips, when
the Debian package is not installed); ``redis_server_factory`` makes more (e.g. one with a password).

``private_postgres`` (per test): a cluster the test may stop and restart (Postgres-outage fault test).

Test modules import helpers as ``from support.sink import Sink`` (pytest puts ``tests/`` on sys.path
because ``tests/`` has no ``__init__.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Make ``tests/support`` importable as ``support`` from every test module, whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.pg import (  # noqa: E402
    PrivatePostgres,
    create_database,
    drop_database,
    reachable_tmpdir,
    shared_server_dsn,
)
from support.redis_server import RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    return shared_server_dsn()


@pytest.fixture
def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    dsn = create_database(pg_server_dsn)
    try:
        yield dsn
    finally:
        try:
            drop_database(pg_server_dsn, dsn)
        except Exception:  # noqa: BLE001 - cleanup must not mask the test's own result
            pass


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    # A short base path keeps the Unix socket path under the kernel's 107-byte limit.
    pg = PrivatePostgres(reachable_tmpdir("sluice-pg-"))
    try:
        yield pg
    finally:
        pg.remove()


@pytest.fixture
def measurement(record_property):
    """``measurement("line")`` prints a figure and shows it again in the run's summary.

    Why: fault and e2e tests exist to *measure* (duplicates, recovery time, throughput during an
    outage). Under pytest-xdist, prints from workers are swallowed, so the line also travels back to the
    controller as a user property and ``pytest_terminal_summary`` lists all of them at the end.
    """

    def emit(line: str) -> None:
        print("\n" + line)
        record_property("measurement", line.strip())

    return emit


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest hook signature
    lines = []
    for key in ("passed", "failed", "error"):
        for rep in terminalreporter.stats.get(key, []):
            for name, value in getattr(rep, "user_properties", []) or []:
                if name == "measurement":
                    lines.append(f"{value}  ({key})")
    if lines:
        terminalreporter.section("measurements")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    made: list[RedisServer] = []

    def make(password: str | None = None, tls: bool = False) -> RedisServer:
        server = RedisServer(password, tls)
        made.append(server)
        return server.start()

    yield make
    for server in made:
        server.remove()


@pytest.fixture
def redis_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory()
