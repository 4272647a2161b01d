"""``sluice sink``: a local stand-in for a webhook destination, for trying Sluice out.

The example pipeline delivers to ``http://127.0.0.1:9000/hook``; run ``sluice sink`` in another
terminal and each delivered request is printed as one JSON line (method, path, body), so the
quick start shows events arriving without any vendor account. It is a development aid, not a
destination: it answers 200 to everything and keeps nothing.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO

import click


def make_handler(out: IO[str], lock: threading.Lock, status: int = 200) -> type[BaseHTTPRequestHandler]:
    class SinkHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: object = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            line = json.dumps({"method": self.command, "path": self.path, "body": body}, ensure_ascii=False)
            with lock:
                out.write(line + "\n")
                out.flush()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            return

    return SinkHandler


def serve(host: str, port: int, out: IO[str], status: int = 200) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(out, threading.Lock(), status))
    server.daemon_threads = True
    return server


def register(main: click.Group) -> None:
    @main.command("sink")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=9000, show_default=True, type=int)
    @click.option("--status", default=200, show_default=True, type=int, help="status to answer with")
    def sink_cmd(host: str, port: int, status: int) -> None:
        """Print every request a destination would receive (a local webhook for trying Sluice)."""
        server = serve(host, port, sys.stdout, status)
        click.echo(f"sink listening on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
