"""A Cost Explorer and a Prometheus that fail and echo back every header they were sent.

The worst case for secrets: a source (or a proxy in front of it) whose error text repeats the
request's credentials. Whatever hubcost stores or logs about the failure must not repeat them.
"""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler

from tests.local_http import LocalHTTPServer

CREDENTIAL_HEADERS = ("authorization", "x-amz-security-token")


class EchoingSources(LocalHTTPServer):
    """POST (Cost Explorer): 400 ValidationException; GET (Prometheus): 400 bad_data."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        sources = self

        class Handler(BaseHTTPRequestHandler):
            def _headers(self) -> dict[str, str]:
                headers = dict(self.headers.items())
                sources.requests.append(headers)
                # Credentials first, so no truncation of the echo can hide them.
                return dict(
                    sorted(headers.items(), key=lambda h: h[0].lower() not in CREDENTIAL_HEADERS)
                )

            def _answer(self, status: int, body: dict, content_type: str) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                echoed = json.dumps(self._headers())
                body = {"__type": "ValidationException", "message": f"bad request {echoed}"}
                self._answer(400, body, "application/x-amz-json-1.1")

            def do_GET(self):
                headers = self._headers()
                if "Authorization" in headers:
                    # What a proxy might do: decode basic auth in its complaint.
                    scheme, _, value = headers["Authorization"].partition(" ")
                    if scheme == "Basic":
                        headers["Authorization"] = base64.b64decode(value).decode()
                body = {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": f"cannot parse; you sent {json.dumps(headers)} to {self.path}",
                }
                self._answer(400, body, "application/json")

            def log_message(self, *args):
                pass

        super().__init__(Handler)
