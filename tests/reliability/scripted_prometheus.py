"""A Prometheus HTTP endpoint whose behaviour a test switches: canned answers, 5xx, slowness."""

from __future__ import annotations

import json
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from tests.local_http import LocalHTTPServer

QUERY_MARKERS = (
    ("groups", "jupyterhub_user_group_info"),
    ("memory", 'resource="memory"'),
    ("cpu", 'resource="cpu"'),
    ("home", "dirsize_total_size_bytes"),
)


def series(value: str, **labels: str) -> dict:
    return {"metric": labels, "value": [0, value]}


class ScriptedPrometheus(LocalHTTPServer):
    """mode "ok": answers[kind] as the vector; "503": Service Unavailable; "slow": 503 late."""

    def __init__(self, answers: dict[str, list[dict]] | None = None):
        self.answers = answers or {}
        self.mode = "ok"
        self.delay_s = 2.0
        self.hits = 0
        prometheus = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                prometheus.hits += 1
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                text = query.get("query", [""])[0]
                if prometheus.mode == "slow":
                    time.sleep(prometheus.delay_s)
                if prometheus.mode == "ok":
                    kind = next(k for k, marker in QUERY_MARKERS if marker in text)
                    result = prometheus.answers.get(kind, [])
                    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
                    status = 200
                else:
                    status, body = 503, {"status": "error", "error": "unavailable"}
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a timeout)

            def log_message(self, *args):
                pass

        super().__init__(Handler)
