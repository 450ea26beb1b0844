"""A webhook receiver on 127.0.0.1 for the notification tests: it records every POST and
answers each as its script says (a status, or None: hang until released)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from tests.local_http import LocalHTTPServer

# What a leaked URL would show: the tests look for it in every output.
SECRET_TOKEN = "T0KEN-s3cr3t-5a1f"
HOOK_PATH = f"/services/T000/B000/{SECRET_TOKEN}"
HANG_S = 120


class Receiver:
    """`script` is the answers of the first requests in order; then `status` answers."""

    def __init__(
        self, *, script=(), status: int | None = 200, delay_s: float = 0, path: str = HOOK_PATH
    ):
        self.script = list(script)
        self.status = status
        self.delay_s = delay_s  # before each answer
        self.path = path
        self.received: list[dict] = []  # every request's body, in arrival order
        self.acknowledged: list[dict] = []  # the bodies answered with a 2xx
        self.paths: list[str] = []
        self.release = threading.Event()  # set: hanging requests end (unanswered)
        self._lock = threading.Lock()
        self._server = LocalHTTPServer(self._handler())

    @property
    def url(self) -> str:
        return self._server.url + self.path

    def __enter__(self) -> Receiver:
        self._server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.__exit__(*exc)

    def keys(self, bodies: list[dict] | None = None) -> list[str]:
        """The event keys of the given bodies (generic JSON form), acknowledged by default."""
        return [b["key"] for b in (self.acknowledged if bodies is None else bodies)]

    def _answer(self) -> int | None:
        with self._lock:
            return self.script.pop(0) if self.script else self.status

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.received.append(payload)
                    receiver.paths.append(self.path)
                status = receiver._answer()
                time.sleep(receiver.delay_s)
                if status is None:
                    receiver.release.wait(HANG_S)
                    self.close_connection = True
                    return
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.acknowledged.append(payload)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        return Handler
