"""A throw-away real ``redis-server`` (the Debian package) on a free loopback port, for the Redis
destination's tests. No fake: the transport speaks the real protocol to a real server.

Stopping and starting it again on the same port is how the outage tests take Redis away and bring it back.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

INSTALL_HINT = (
    "redis-server is not installed: the Redis destination is tested against a real server. "
    "Install it with `apt-get install -y redis-server` (as root; .ci/run does this on CI)."
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, password: str | None = None, tls: bool = False):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(INSTALL_HINT, pytrace=False)
        self.binary = binary
        self.password = password
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls = tls
        self.ca_pem = ""
        if tls:  # a self-signed certificate for 127.0.0.1; only TLS connections are accepted
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(self.dir / "key.pem"), "-out", str(self.dir / "cert.pem")],
                check=True, capture_output=True,
            )  # fmt: skip
            self.ca_pem = (self.dir / "cert.pem").read_text()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                "no", "--daemonize", "no", "--dir", str(self.dir), "--loglevel", "warning"]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            args[args.index("--port") + 1] = "0"
            args += ["--tls-port", str(self.port), "--tls-cert-file", str(self.dir / "cert.pem"),
                     "--tls-key-file", str(self.dir / "key.pem"),
                     "--tls-ca-cert-file", str(self.dir / "cert.pem"),
                     "--tls-auth-clients", "no"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise RuntimeError(f"redis-server exited at start: {err[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    if self.tls:
                        return self
                    s.sendall(b"PING\r\n")
                    if s.recv(64):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not accept connections on port {self.port} in 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def client(self):  # noqa: ANN201 - redis.Redis, imported lazily
        import redis

        tls = {"ssl": True, "ssl_ca_data": self.ca_pem} if self.tls else {}
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, decode_responses=True, **tls
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
