"""The load generator: a second process sending HTTP requests to the API on loopback.

Reads a plan as JSON on stdin and writes one JSON result on stdout:

    {"base": "http://127.0.0.1:PORT", "requests": [[label, path], ...], "rounds": N,
     "concurrency": C, "time_limit_s": S, "count_rows": false}

C threads, each with its own keep-alive connection, take the plan's requests in order (the
whole list, `rounds` times) until it is exhausted or `time_limit_s` has passed. Each request
is timed from sending to the last byte of the body. With `count_rows`, the body is parsed
after the clock stopped (JSON arrays: their length; CSV: lines minus the header). With
`revalidate`, each thread sends the ETag it last got for a path as `If-None-Match`, as a
browser or a caching proxy does. `headers` go with every request (`Accept-Encoding: gzip`
as Grafana sends it); each result has the answer's `Content-Encoding` (`encoding`, or null).

    python -m bench.loadgen < plan.json
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit

TIMEOUT_S = 60


def run(plan: dict) -> dict:
    base = urlsplit(plan["base"])
    work = [tuple(item) for _ in range(plan["rounds"]) for item in plan["requests"]]
    deadline = time.monotonic() + plan["time_limit_s"]
    lock = threading.Lock()
    position = 0
    results: list[dict] = []

    def worker() -> None:
        nonlocal position
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=TIMEOUT_S)
        tags: dict[str, str] = {}
        try:
            while time.monotonic() < deadline:
                with lock:
                    if position >= len(work):
                        return
                    label, path = work[position]
                    position += 1
                headers = dict(plan.get("headers", {}))
                if path in tags:
                    headers["If-None-Match"] = tags[path]
                started = time.perf_counter()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                seconds = time.perf_counter() - started
                if plan.get("revalidate") and response.getheader("etag"):
                    tags[path] = response.getheader("etag")
                result = {
                    "label": label,
                    "seconds": seconds,
                    "status": response.status,
                    "bytes": len(body),
                    "encoding": response.getheader("content-encoding"),
                }
                if plan.get("count_rows") and response.status == 200:
                    result["rows"] = _rows(body, response.getheader("content-type", ""))
                with lock:
                    results.append(result)
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(plan["concurrency"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"elapsed_s": time.perf_counter() - started, "results": results}


def _rows(body: bytes, content_type: str) -> int:
    if content_type.startswith("text/csv"):
        return max(body.count(b"\n") - 1, 0)
    return len(json.loads(body))


def main() -> None:
    json.dump(run(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
