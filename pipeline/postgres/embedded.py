"""A local Postgres for ``sluice up`` when no ``DATABASE_URL`` is configured.

Why this exists: the pipeline's promise is "one command, no hosted control plane". A developer who runs
``sluice up`` on a laptop (or a CI box) must get a durable queue without installing or configuring a
database first. So we run a private Postgres cluster whose data lives in the project (``.sluice/pgdata``)
and talk to it over a Unix socket only, which avoids port clashes.

It is private in the security sense too: the socket directory is 0700 and owned by the user the cluster
runs as, the socket itself 0700, and every connection needs the superuser password (scram-sha-256),
which is generated at ``initdb`` and kept in ``.sluice/pgpass`` (0600, owned by whoever runs sluice;
the DSN names that file, it never contains the password). Other local users can neither reach the
socket nor log in. A cluster made by an older sluice (trust authentication) is converted on its next
start. Parent directories are never opened up silently: when the service user cannot reach the data
folder, the error says what to do.

Where the binaries come from, in order of preference:

1. ``$SLUICE_PG_BINDIR`` when set (explicit beats clever);
2. the ``pgserver`` pip package (a dependency of Sluice), so a fresh machine needs no apt at all;
3. the machine's Postgres (``/usr/lib/postgresql/<ver>/bin``, newest first).

Postgres refuses to run as root. When we are root (containers, CI) the cluster runs as an unprivileged
user: ``postgres`` if the machine has it, otherwise a system user ``sluice-pg`` that we create.

The functions are idempotent and safe to call from several processes at once (a file lock serialises
start/stop), so test workers and a ``sluice up`` can share one instance.
"""

from __future__ import annotations

import fcntl
import glob
import grp
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("sluice.postgres")

SUPERUSER = "postgres"
DEFAULT_DATABASE = "sluice"
# Unix-socket only: the port number just names the socket file (.s.PGSQL.<port>).
SOCKET_PORT = 5432
# The Linux limit for a Unix socket path is 107 bytes; leave room for "/.s.PGSQL.5432".
_MAX_SOCKET_DIR_LEN = 90
_FALLBACK_USER = "sluice-pg"
# The libpq password file beside the data folder (.sluice/pgpass): `*:*:*:postgres:<password>`.
PASSFILE_NAME = "pgpass"

# Settings appended to postgresql.conf at initdb time. Durability settings (fsync, synchronous_commit,
# full_page_writes) stay at Postgres defaults on purpose: the gateway acknowledges only after commit,
# and that promise is worthless if the commit is not on disk.
_CONF = """
# --- added by sluice (pipeline/postgres/embedded.py) ---
listen_addresses = ''
unix_socket_permissions = 0700
password_encryption = scram-sha-256
max_connections = 300
shared_buffers = 128MB
wal_buffers = 16MB
max_wal_size = 2GB
checkpoint_timeout = 15min
log_min_messages = warning
log_line_prefix = '%m [%p] '
"""


class EmbeddedPostgresError(RuntimeError):
    """The local Postgres could not be found, initialised or started; the message says how to fix it."""


@dataclass(frozen=True)
class _Runner:
    bindir: Path
    user: str | None  # None: run as the current (non-root) user

    def run(
        self, args: list[str], *, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        env = dict(os.environ)
        env.pop("PGDATA", None)
        env["LC_ALL"] = "C.UTF-8" if _has_locale("C.UTF-8") else "C"
        # temp files: postgres tools may need a writable cwd/TMPDIR when running as another user
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            cwd="/",
            env=env,
            **kwargs,
        )
        if check and proc.returncode != 0:
            raise EmbeddedPostgresError(
                f"`{' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stdout.strip()[-2000:]}"
            )
        return proc


def _has_locale(name: str) -> bool:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return name.lower().replace("-", "") in out.lower().replace("-", "")


def _candidate_bindirs() -> list[Path]:
    out: list[Path] = []
    env = os.environ.get("SLUICE_PG_BINDIR")
    if env:
        out.append(Path(env))
    # Locate pgserver's bundled binaries without importing it (its import has side effects we do not need).
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        out.append(Path(spec.origin).parent / "pginstall" / "bin")

    def _ver(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return 0.0

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_ver, reverse=True):
        out.append(Path(d))
    needed = ("postgres", "initdb", "pg_ctl")
    return [d for d in out if all((d / exe).exists() for exe in needed)]


def _is_root() -> bool:
    return os.geteuid() == 0


def _service_user() -> str | None:
    """The unprivileged user the cluster runs as, creating one if we are root and none exists."""
    if not _is_root():
        return None
    for name in ("postgres", _FALLBACK_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _FALLBACK_USER],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmbeddedPostgresError(
            "Postgres refuses to run as root and no 'postgres' user exists; creating user "
            f"'{_FALLBACK_USER}' failed ({exc}). Create an unprivileged user named 'postgres', "
            "or set DATABASE_URL to an existing server."
        ) from exc
    return _FALLBACK_USER


def _blocking_parent(path: Path, user: str) -> Path | None:
    """The first directory on the way to ``path`` that ``user`` may not traverse, else None."""
    pw = pwd.getpwnam(user)
    if pw.pw_uid == 0:
        return None
    gids = set(os.getgrouplist(user, pw.pw_gid))
    for d in [*reversed(path.parents), path]:
        try:
            st = d.stat()
        except FileNotFoundError:
            return None  # created later, by us, with the right owner
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in gids:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return d
    return None


def _require_reachable(path: Path, user: str | None, what: str) -> None:
    """Fail, saying how to fix it, when the service user cannot reach ``path``. Never changes modes."""
    if user is None:
        return
    blocked = _blocking_parent(path, user)
    if blocked is None:
        return
    st = blocked.stat()
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    raise EmbeddedPostgresError(
        f"the local Postgres runs as user {user!r} (Postgres refuses to run as root), which cannot reach "
        f"{what} {path}: {blocked} (mode {stat.S_IMODE(st.st_mode):04o}, owner {owner}:{group}) does not "
        f"let it through. Fix one of: run sluice from a folder {user!r} can reach (for example under "
        f"/srv or /tmp); or allow passing through (not listing) with `chmod o+x {blocked}` if that is "
        "acceptable on this machine; or set DATABASE_URL to an existing Postgres server."
    )


def _pick_runner() -> _Runner:
    user = _service_user()
    tried: list[str] = []
    for bindir in _candidate_bindirs():
        runner = _Runner(bindir=bindir, user=user)
        if user is not None and (blocked := _blocking_parent(bindir, user)) is not None:
            tried.append(f"{bindir}: user {user!r} cannot pass through {blocked}")
            continue
        try:
            res = runner.run(["postgres", "--version"], timeout=30, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{bindir}: {exc}")
            continue
        if res.returncode == 0:
            return runner
        tried.append(f"{bindir}: {res.stdout.strip()[:200]}")
    detail = "; ".join(tried) or "none found"
    raise EmbeddedPostgresError(
        "No usable Postgres binaries for the local database (tried: "
        f"{detail}). Fix: `pip install pgserver` (bundled binaries), or install Postgres "
        "(e.g. `apt-get install postgresql`), or set SLUICE_PG_BINDIR, "
        "or set DATABASE_URL to an existing server."
    )


def _socket_dir(data_dir: Path) -> Path:
    """Socket next to the data when the path is short enough, else a per-data-dir folder in /tmp."""
    preferred = data_dir.parent / ("run" if data_dir.name == "pgdata" else f"{data_dir.name}.run")
    if len(str(preferred)) <= _MAX_SOCKET_DIR_LEN:
        return preferred
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"sluice-pg-{digest}"


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir.parent / f".{data_dir.name}.lock"
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_postmaster(data_dir: Path) -> tuple[int, Path, int] | None:
    """(pid, socket dir, port) of a *running* postmaster for this data dir, else None."""
    pid_file = data_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 5:
        return None
    try:
        pid = int(lines[0].strip())
        port = int(lines[3].strip())
    except ValueError:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by the service user
    sock = Path(lines[4].strip().split(",")[0]) if lines[4].strip() else _socket_dir(data_dir)
    if not (sock / f".s.PGSQL.{port}").exists():
        return None
    return pid, sock, port


def dsn_for(
    socket_dir: Path, port: int = SOCKET_PORT, dbname: str = DEFAULT_DATABASE, passfile: Path | None = None
) -> str:
    """A libpq URL for a Unix-socket server (accepted by psycopg, psql and DATABASE_URL).

    The password stays in ``passfile`` (libpq reads it), so the DSN can be logged and passed around.
    """
    dsn = f"postgresql://{SUPERUSER}@/{quote(dbname)}?host={quote(str(socket_dir))}&port={port}"
    if passfile is not None:
        dsn += f"&passfile={quote(str(passfile))}"
    return dsn


def _passfile(data_dir: Path) -> Path:
    return data_dir.parent / PASSFILE_NAME


def _write_passfile(path: Path, password: str) -> None:
    """``*:*:*:postgres:<password>``, 0600 and owned by this process's user (libpq ignores it otherwise)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"*:*:*:{SUPERUSER}:{password}\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _wait_ready(dsn: str, timeout: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.Error as exc:
            last = exc
            time.sleep(0.1)
    raise EmbeddedPostgresError(f"local Postgres did not accept connections within {timeout:.0f}s: {last}")


def _ensure_database(socket_dir: Path, port: int, dbname: str, passfile: Path) -> None:
    import psycopg

    dsn = dsn_for(socket_dir, port, "postgres", passfile)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            try:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(dbname)))
            except psycopg.errors.DuplicateDatabase:
                pass


def ensure_local_postgres(data_dir: Path, *, dbname: str = DEFAULT_DATABASE, timeout: float = 60) -> str:
    """Start (or reuse) the project-local Postgres whose data lives in ``data_dir``; return its DSN.

    ``data_dir`` may be the data folder itself (``.sluice/pgdata``) or its parent (``.sluice``): a folder
    that is not a cluster and is not named ``pgdata`` gets ``pgdata`` appended, so
    ``ensure_local_postgres(Path('.sluice'))`` keeps the data in ``.sluice/pgdata``.
    Idempotent: a running instance for the same data is reused, a stopped one is started, a missing one is
    created with ``initdb``. The database ``dbname`` is created if missing.
    """
    return start_local_postgres(data_dir, dbname=dbname, timeout=timeout).dsn


@dataclass(frozen=True)
class LocalPostgres:
    """A running local cluster: its DSN, whether this call started it, and its postmaster pid."""

    dsn: str
    started: bool
    pid: int
    data_dir: Path


def start_local_postgres(
    data_dir: Path, *, dbname: str = DEFAULT_DATABASE, timeout: float = 60
) -> LocalPostgres:
    """``ensure_local_postgres`` that also says whether the server was already running (``sluice up``
    tells the user, since a reused server keeps running after sluice exits until ``sluice down``)."""
    data_dir = _data_dir(data_dir)
    with _locked(data_dir):
        running = _read_postmaster(data_dir)
        started = running is None
        if running is None:
            _start(data_dir, timeout)
            running = _read_postmaster(data_dir)
            if running is None:
                raise EmbeddedPostgresError(
                    f"local Postgres in {data_dir} reported started but has no socket; see {data_dir}/log/"
                )
        pid, sock, port = running
        passfile = _passfile(data_dir)
        _secure(data_dir, sock, port, passfile)
        _wait_ready(dsn_for(sock, port, "postgres", passfile), timeout)
        _ensure_database(sock, port, dbname, passfile)
        return LocalPostgres(dsn_for(sock, port, dbname, passfile), started, pid, data_dir)


def _data_dir(data_dir: Path) -> Path:
    resolved = Path(data_dir).expanduser().resolve()
    if not (resolved / "PG_VERSION").exists() and resolved.name != "pgdata":
        resolved = resolved / "pgdata"
    return _relocated(resolved)


RELOCATED_BASE = Path(os.environ.get("SLUICE_PG_RELOCATE_DIR", "/var/lib/sluice"))


def _relocated(data_dir: Path) -> Path:
    """Where the cluster for ``data_dir`` really lives.

    As root, Postgres runs as an unprivileged user, who may not be able to pass through the project's
    folders (a clone under /root, mode 0700). Rather than opening those folders up (never done silently),
    the cluster then lives in a folder of its own under /var/lib/sluice, named after the project path, so
    the quick start works from any folder; a note in the project folder says where it went.
    """
    if not _is_root() or (data_dir / "PG_VERSION").exists():
        return data_dir
    user = _service_user()
    if user is None or _blocking_parent(data_dir, user) is None:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    target = RELOCATED_BASE / f"pg-{digest}" / "pgdata"
    if not (target / "PG_VERSION").exists() and _blocking_parent(RELOCATED_BASE.parent, user) is not None:
        return data_dir  # nowhere better: _start explains what to do
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        (data_dir.parent / "PGDATA-LOCATION").write_text(
            f"{target}\n(the local Postgres user cannot pass through this project's folders, so its data "
            "is there)\n"
        )
    except OSError:
        pass
    if not (target / "PG_VERSION").exists():
        log.warning(
            "local Postgres: user %r cannot reach %s; its data goes to %s instead", user, data_dir, target
        )
    RELOCATED_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
    return target


_TRUST_LINE = re.compile(r"^(\s*(?:local|host\S*)\s.*\s)trust(\s*)$", re.MULTILINE)


def _secure(data_dir: Path, sock: Path, port: int, passfile: Path) -> None:
    """Convert a cluster made by an older sluice (trust on a world-writable socket) to password auth.

    Idempotent: a cluster with a password file and no ``trust`` line is left alone. The socket directory
    is closed to other users at once; ``unix_socket_permissions`` applies from the next start.
    """
    sock.chmod(0o700)
    hba = data_dir / "pg_hba.conf"
    try:
        text = hba.read_text()
    except PermissionError:
        text = ""  # readable by the service user only: initdb wrote it, so it is ours and current
    if passfile.exists() and not _TRUST_LINE.search(text):
        return
    import psycopg

    password = secrets.token_hex(24)
    with psycopg.connect(dsn_for(sock, port, "postgres", passfile), autocommit=True, connect_timeout=10) as c:
        c.execute("SET password_encryption = 'scram-sha-256'")
        c.execute(
            psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                psycopg.sql.Identifier(SUPERUSER), psycopg.sql.Literal(password)
            )
        )
        _write_passfile(passfile, password)
        if _TRUST_LINE.search(text):
            hba.write_text(_TRUST_LINE.sub(r"\1scram-sha-256\2", text))
            with open(data_dir / "postgresql.conf", "a") as fh:
                fh.write("unix_socket_permissions = 0700\n")
            c.execute("SELECT pg_reload_conf()")
    log.warning("local Postgres in %s now requires a password (kept in %s)", data_dir, passfile)


def _start(data_dir: Path, timeout: float) -> None:
    runner = _pick_runner()
    user = runner.user
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _require_reachable(data_dir, user, "the data folder")
    pw = pwd.getpwnam(user) if user else None

    if not (data_dir / "PG_VERSION").exists():
        if data_dir.exists() and any(data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{data_dir} exists and is not empty but is not a Postgres data folder. "
                "Move it away or delete it, then run again."
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        if pw:
            os.chown(data_dir, pw.pw_uid, pw.pw_gid)
        data_dir.chmod(0o700)
        log.info("initialising local Postgres in %s (binaries: %s)", data_dir, runner.bindir)
        password = secrets.token_hex(24)
        # initdb reads the password from a file the service user can read (not inside the data folder,
        # which must be empty); it exists for the initdb call only.
        pwfile = data_dir.parent / f".{data_dir.name}.initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        if pw:
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        try:
            runner.run(
                [
                    "initdb",
                    "-D",
                    str(data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                timeout=max(timeout, 120),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        _write_passfile(_passfile(data_dir), password)
        with open(data_dir / "postgresql.conf", "a") as fh:
            fh.write(_CONF)

    sock = _socket_dir(data_dir)
    sock.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock.chmod(0o700)  # only the service user (and root) may reach the socket
    logdir = data_dir.parent / "pglog"
    logdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if pw:
        for d in (sock, logdir):
            os.chown(d, pw.pw_uid, pw.pw_gid)
    # A crashed server can leave a stale postmaster.pid; postgres itself detects and replaces it.
    opts = f"-k {sock} -p {SOCKET_PORT} -c listen_addresses=''"
    res = runner.run(
        [
            "pg_ctl",
            "-D",
            str(data_dir),
            "-w",
            "-t",
            str(int(timeout)),
            "-l",
            str(logdir / "server.log"),
            "-o",
            opts,
            "start",
        ],
        timeout=timeout + 30,
        check=False,
    )
    if res.returncode != 0:
        tail = ""
        try:
            tail = (logdir / "server.log").read_text()[-2000:]
        except OSError:
            pass
        raise EmbeddedPostgresError(
            f"could not start local Postgres in {data_dir}: {res.stdout.strip()[-1000:]}\n{tail}\n"
            f"Fix the problem above, or delete {data_dir} to start from scratch, or set DATABASE_URL."
        )
    log.info("local Postgres started: data %s, socket %s", data_dir, sock)


def stop_local_postgres(data_dir: Path, *, mode: str = "fast", timeout: float = 60) -> bool:
    """Stop the local Postgres for ``data_dir`` (same path rules as ``ensure_local_postgres``).

    Returns True if a server was running. ``mode`` is pg_ctl's shutdown mode: ``fast`` (default, rolls
    back open transactions cleanly) or ``immediate`` (like a crash; used by fault tests).
    """
    data_dir = _data_dir(data_dir)
    with _locked(data_dir):
        running = _read_postmaster(data_dir)
        if running is None:
            return False
        pid = running[0]
        try:
            runner = _pick_runner()
            res = runner.run(
                ["pg_ctl", "-D", str(data_dir), "-m", mode, "-w", "-t", str(int(timeout)), "stop"],
                timeout=timeout + 30,
                check=False,
            )
            if res.returncode == 0:
                return True
            log.warning("pg_ctl stop failed (%s); signalling postmaster %s", res.stdout.strip(), pid)
        except EmbeddedPostgresError as exc:
            log.warning("%s; signalling postmaster %s", exc, pid)
        try:
            os.kill(pid, signal.SIGQUIT if mode == "immediate" else signal.SIGINT)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        raise EmbeddedPostgresError(f"local Postgres (pid {pid}) did not stop within {timeout:.0f}s")


def local_postgres_status(data_dir: Path) -> dict:
    """What ``sluice`` can show about the local database: running or not, and where."""
    data_dir = _data_dir(data_dir)
    running = _read_postmaster(data_dir)
    if running is None:
        return {"data_dir": str(data_dir), "running": False}
    pid, sock, port = running
    dsn = dsn_for(sock, port, passfile=_passfile(data_dir))
    return {"data_dir": str(data_dir), "running": True, "pid": pid, "dsn": dsn}


def remove_local_postgres(data_dir: Path) -> None:
    """Stop and delete a local cluster (tests use this for throwaway instances)."""
    data_dir = _data_dir(data_dir)
    stop_local_postgres(data_dir, mode="immediate")
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.rmtree(_socket_dir(data_dir), ignore_errors=True)
