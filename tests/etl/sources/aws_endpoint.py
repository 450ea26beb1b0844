"""A tiny local Cost Explorer endpoint: botocore talks real HTTP to it, retries included."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from tests.local_http import LocalHTTPServer


class FakeCostExplorer(LocalHTTPServer):
    """Answers each GetCostAndUsage with `respond(request) -> (status, body)`; records requests."""

    def __init__(self, respond: Callable[[dict], tuple[int, dict]]):
        self.respond = respond
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append({"target": self.headers.get("X-Amz-Target"), "body": request})
                status, body = fake.respond(request)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        super().__init__(Handler)


def answer(days_groups, *, token=None, unit="USD", metric="UnblendedCost", estimated=False):
    """A GetCostAndUsage answer: days_groups = [(day, [(keys, amount), ...]), ...]."""
    results = []
    for day, groups in days_groups:
        end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
        results.append(
            {
                "TimePeriod": {"Start": day, "End": end},
                "Total": {},
                "Groups": [
                    {"Keys": list(keys), "Metrics": {metric: {"Amount": amount, "Unit": unit}}}
                    for keys, amount in groups
                ],
                "Estimated": estimated,
            }
        )
    body = {"ResultsByTime": results, "DimensionValueAttributes": []}
    if token:
        body["NextPageToken"] = token
    return body
