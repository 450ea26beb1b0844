"""Figure 7 (issue 13): the pages' weight and time to first paint on the bench's warehouse.

Headless chromium (Debian's, through its chromedriver, as the tests drive it) opens each page
of a `hubcost serve` of its own; the Performance API gives the time to first paint and to
first contentful paint from the navigation's start, and the navigation entry the time to the
page's last byte. Weight: the HTML's bytes (inline SVG included) and the assets it loads.
The first load of each page is reported apart (cold: no stylesheet cached); then the median
and the worst of the rounds.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

from bench.server import ApiServer

ASSETS = ("/ui/static/style.css", "/ui/static/icon.svg")
# Paint entries can be recorded after the load event that `driver.get` waits for: poll.
PAINT = """
const done = arguments[arguments.length - 1];
const started = performance.now();
(function read() {
  const paint = Object.fromEntries(
    performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
  if (!('first-contentful-paint' in paint) && performance.now() - started < 10000) {
    setTimeout(read, 20);
    return;
  }
  const nav = performance.getEntriesByType('navigation')[0];
  done({first_paint: paint['first-paint'] ?? null,
        first_contentful_paint: paint['first-contentful-paint'] ?? null,
        response_end: nav.responseEnd});
})();
"""


def pages(base: str, last_day: dt.date, user: str) -> dict[str, str]:
    def at(path: str, days: int) -> str:
        first = last_day - dt.timedelta(days=days)
        return f"{base}{path}?{urlencode({'from': first.isoformat(), 'to': last_day.isoformat()})}"

    return {
        "overview, 30 days": at("/ui/", 30),
        "user page, 30 days": at(f"/ui/users/{quote(user, safe='')}", 30),
        "hub page, 30 days": at("/ui/hubs/hub-00", 30),
        "group page, 30 days": at("/ui/groups/group-00", 30),
        "overview, 365 days": at("/ui/", 365),
    }


def costliest_user(base: str, last_day: dt.date) -> str:
    """The costliest user of the 30 days: the fullest user page."""
    first = last_day - dt.timedelta(days=30)
    query = urlencode({"from": first.isoformat(), "to": last_day.isoformat(), "limit": 1})
    with urllib.request.urlopen(f"{base}/costs-per-user?{query}", timeout=60) as answer:
        return json.loads(answer.read())[0]["user"]


def body_bytes(url: str) -> int:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return len(answer.read())


def figures(database_url: str, last_day: dt.date, *, rounds: int, log_path: Path) -> dict:
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        return {"skipped": "needs Debian's chromium and chromium-driver"}
    from tests.api.ui.browser import chromium

    results: dict = {}
    with ApiServer(database_url, log_path=log_path) as server, chromium() as driver:
        assets = sum(body_bytes(server.base + asset) for asset in ASSETS)
        user = costliest_user(server.base, last_day)
        for label, url in pages(server.base, last_day, user).items():
            loads = []
            for _ in range(rounds + 1):
                driver.get(url)
                loads.append(driver.execute_async_script(PAINT))
            cold, warm = loads[0], loads[1:]
            results[label] = {
                "url": url.removeprefix(server.base),
                "html_bytes": body_bytes(url),
                "asset_bytes": assets,
                "svg_elements": driver.execute_script(
                    "return document.querySelectorAll('svg').length"
                ),
                "cold": cold,
                **{
                    key: {
                        "p50": statistics.median(load[key] for load in warm),
                        "max": max(load[key] for load in warm),
                    }
                    for key in ("first_paint", "first_contentful_paint", "response_end")
                },
            }
    return results


def report(figures: dict) -> list[str]:
    if "skipped" in figures:
        return [f"\n7. pages: skipped: {figures['skipped']}"]
    lines = [
        "\n7. pages in headless chromium (target: first paint < 1 s, page and assets < 1 MB)",
        f"{'page':22} {'HTML kB':>8} {'+assets':>8} {'svg':>4} {'last byte':>10} "
        f"{'first paint p50':>16} {'max':>7} {'cold':>7}",
    ]
    for label, f in figures.items():
        lines.append(
            f"{label:22} {f['html_bytes'] / 1000:8.1f} {f['asset_bytes'] / 1000:8.1f} "
            f"{f['svg_elements']:4d} {f['response_end']['p50']:8.0f}ms "
            f"{f['first_paint']['p50']:14.0f}ms {f['first_paint']['max']:5.0f}ms "
            f"{f['cold']['first_paint']:5.0f}ms"
        )
    return lines
