"""A loopback stand-in for Salesforce's OAuth and REST endpoints, for end-to-end tests of declared steps.

Behaviour written from Salesforce's documentation: the username-password flow
(POST /services/oauth2/token, form-encoded; the password is followed by the user's security token;
a wrong one answers 400 ``{"error": "invalid_grant", ...}``), parameterizedSearch (GET
/services/data/vXX.X/parameterizedSearch/?q=...&sobject=Lead → ``{"searchRecords": [...]}``), sObject
create (POST .../sobjects/Lead → 201 ``{"id", "success", "errors"}``) and update (PATCH, or POST with
``_HttpMethod=PATCH`` → 204), and an expired session (401 ``INVALID_SESSION_ID``). Real HTTP on a real
socket, so the router's own client, pool and guard are exercised.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeSalesforce:
    username: str
    password: str  # the password with the security token appended, as the password flow sends it
    seen: list[Seen] = field(default_factory=list)
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def start(self) -> FakeSalesforce:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                u = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(u.query).items()}
                ctype = self.headers.get("Content-Type") or ""
                if "form" in ctype:
                    body: Any = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                else:
                    body = json.loads(raw) if raw else None
                seen = Seen(self.command, u.path, query, dict(self.headers), body)
                with fake._lock:
                    fake.seen.append(seen)
                    status, answer = fake.answer(seen)
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _handle

        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def expire_sessions(self) -> None:
        with self._lock:
            self.tokens.clear()

    def calls(self, kind: str) -> list[Seen]:
        """kind: token, search, create, update."""
        with self._lock:
            return [s for s in self.seen if _kind(s) == kind]

    # -- the vendor's behaviour ---------------------------------------------------------------------
    def answer(self, s: Seen) -> tuple[int, Any]:
        if s.path == "/services/oauth2/token":
            f = s.body or {}
            if f.get("grant_type") == "password" and (f.get("username"), f.get("password")) == (
                self.username,
                self.password,
            ):
                token = f"00Dfake!token{next(self._ids)}"
                self.tokens.add(token)
                return 200, {
                    "access_token": token,
                    "instance_url": self.url,
                    "id": f"{self.url}/id/00Dfake/005fake",
                    "token_type": "Bearer",
                    "issued_at": "1700000000000",
                    "signature": "c2lnbmF0dXJl",
                }
            return 400, {"error": "invalid_grant", "error_description": "authentication failure"}
        auth = s.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        kind = _kind(s)
        if kind == "search":
            hits = [
                {"attributes": {"type": "Lead", "url": f"/services/data/v50.0/sobjects/Lead/{i}"}, "Id": i}
                for i, lead in self.leads.items()
                if lead.get("Email") == s.query.get("q")
            ]
            return 200, {"searchRecords": hits}
        if kind == "create":
            lead_id = f"00Q{next(self._ids):012d}"
            self.leads[lead_id] = dict(s.body or {})
            return 201, {"id": lead_id, "success": True, "errors": []}
        if kind == "update":
            lead_id = s.path.rsplit("/", 1)[1]
            if lead_id not in self.leads:
                return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
            self.leads[lead_id].update(s.body or {})
            return 204, None
        return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


def _kind(s: Seen) -> str:
    if s.path == "/services/oauth2/token":
        return "token"
    if "/parameterizedSearch" in s.path:
        return "search"
    if s.path.endswith("/sobjects/Lead") and s.method == "POST":
        return "create"
    if "/sobjects/Lead/" in s.path and (s.method == "PATCH" or s.query.get("_HttpMethod") == "PATCH"):
        return "update"
    return "other"
