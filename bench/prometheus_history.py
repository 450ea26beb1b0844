"""A month of realistic Prometheus history: 20 hubs, 1,000 users, 5-minute samples.

Per day, about 12% of users run a server for a random stretch (memory and CPU requests plus
the pod's username annotation), every user has a home directory (dirsize), and the group
exporter reports everyone (10% in two groups: the `multiple` marker and both groups). As in
tests/etl/prometheus_history.py, usage samples sit 30 s before each 5-minute point so
Prometheus 2.x and 3.x agree. One OpenMetrics file per day, one `promtool` run per file; the
TSDB is kept under var/ and reused while its marker matches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import subprocess
from pathlib import Path

GIB = 2**30
GROUPS = [f"group-{i:02d}" for i in range(40)]


def population(hubs: int, users: int) -> list[tuple[str, str, list[str]]]:
    rng = random.Random(5)
    per_hub = users // hubs
    result = []
    for h in range(hubs):
        for u in range(per_hub):
            groups = rng.sample(GROUPS, 2) if rng.random() < 0.10 else [rng.choice(GROUPS)]
            result.append((f"hub-{h:02d}", f"user-{h:02d}-{u:03d}", groups))
    return result


def _series_lines(name: str, labels: dict, values: list[tuple[int, float]]) -> list[str]:
    text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return [f"{name}{{{text}}} {value} {ts}" for ts, value in values]


def write_day(path: Path, day: dt.date, people) -> int:
    """Write the day's OpenMetrics file; return its sample count."""
    rng = random.Random(day.toordinal())
    midnight = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())
    at = [midnight + 300 * p - 30 for p in range(288)]
    group_at = [midnight + 300 * (p + 1) - 30 for p in range(288)]
    active = rng.sample(range(len(people)), len(people) * 12 // 100)
    sessions = []
    for i in active:
        start = rng.randrange(0, 240)
        sessions.append((people[i], range(start, min(288, start + rng.randrange(24, 200)))))
    samples = 0
    with path.open("w") as out:
        families = {
            "kube_pod_container_resource_requests": [],
            "kube_pod_annotations": [],
            "dirsize_total_size_bytes": [],
            "jupyterhub_user_group_info": [],
        }
        for (hub, user, _), points in sessions:
            pod = f"jupyter-{user}"
            memory = rng.choice([1, 2, 4, 8, 16]) * GIB
            for resource, value, unit in (("memory", memory, "byte"), ("cpu", 0.5, "core")):
                labels = dict(
                    namespace=hub,
                    pod=pod,
                    container="notebook",
                    resource=resource,
                    unit=unit,
                )
                families["kube_pod_container_resource_requests"].append(
                    (labels, [(at[p], value) for p in points])
                )
            labels = dict(namespace=hub, pod=pod, annotation_hub_jupyter_org_username=user)
            families["kube_pod_annotations"].append((labels, [(at[p], 1) for p in points]))
        for hub, user, groups in people:
            size = rng.randrange(1, 50 * GIB)
            families["dirsize_total_size_bytes"].append(
                (dict(namespace=hub, directory=user), [(t, size) for t in at])
            )
            rows = (["multiple"] if len(groups) > 1 else []) + groups
            for group in rows:
                labels = dict(namespace=hub, username=user, username_escaped=user, usergroup=group)
                families["jupyterhub_user_group_info"].append((labels, [(t, 1) for t in group_at]))
        for name, series in families.items():
            out.write(f"# TYPE {name} gauge\n")
            for labels, values in series:
                lines = _series_lines(name, labels, values)
                samples += len(lines)
                out.write("\n".join(lines) + "\n")
        out.write("# EOF\n")
    return samples


def ensure_history(tsdb: Path, *, first: dt.date, days: int, hubs: int, users: int) -> dict:
    """Build the TSDB unless its marker says it already holds this history."""
    wanted = {
        "first": first.isoformat(),
        "days": days,
        "hubs": hubs,
        "users": users,
        "generator": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16],
    }
    marker = tsdb / "bench-history.json"
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return {**wanted, "reused": True}
    subprocess.run(["rm", "-rf", str(tsdb)], check=True)
    tsdb.mkdir(parents=True)
    people = population(hubs, users)
    samples = 0
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        source = tsdb.parent / f"{day}.om"
        samples += write_day(source, day, people)
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(tsdb)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        source.unlink()
    marker.write_text(json.dumps(wanted))
    return {**wanted, "samples": samples, "reused": False}
