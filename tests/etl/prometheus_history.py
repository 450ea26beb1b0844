"""Deterministic Prometheus history for the real-server tests, and the server itself.

Every usage sample sits 30 s before a 5-minute evaluation point, so each point of day D sees
exactly the sample written for it on Prometheus 2.x and 3.x alike (docs/attribution.md §4.1).
`point` p of day D is D 00:00 + 5 min x p (p = 0..287); its sample is written at that time − 30 s.

The history (GiB = 2^30 bytes; values chosen so every sum is exact in binary floating point):

hub prod
  jupyter-alice      memory 2 GiB all days (+ a 0.5 GiB sidecar on D1), cpu 0.5 (+0.25 on D1)
  jupyter-bob-2esmith (user bob.smith) memory 1 GiB, cpu 1, D2 points 0..143 only
  dask-worker-1      (user bob.smith, a dask pod) memory 4 GiB, cpu 2, D2 points 144..155
  hub-0              memory 8 GiB, no username annotation: never attributed
  home: alice 10 GiB; _shared 100 GiB; bob-2esmith on D2 4 GiB (points 0..143) then 6 GiB;
        dave-40x (not in any snapshot, unescapes to dave@x) 2 GiB on D1
  groups D1: alice staff, bob.smith none; D2: alice multiple+staff+research, bob.smith none;
         D3: alice research, bob.smith none
hub staging
  jupyter-carol      memory 3 GiB, cpu 0.25, all days
  jupyter-frank-name-1a2b (user frank.name) memory 1 GiB, cpu 0.125, D1 only
  home: carol 3 GiB (D3: points 0..95 3 GiB, 96..191 6 GiB, then none); frank-name-1a2b 1 GiB
        on D1 and D2 (a slug escapism cannot undo: only the snapshot names it)
  groups D1 only: carol none, frank.name research (escaped frank-name-1a2b)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import subprocess
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

GIB = 2**30
DAYS = (dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3))
D1, D2, D3 = DAYS
ALL = range(288)


def _requests(ns, pod, container, resource, value, points):
    unit = "byte" if resource == "memory" else "core"
    labels = dict(namespace=ns, pod=pod, container=container, resource=resource, unit=unit)
    return ("kube_pod_container_resource_requests", labels, value, points)


def _annotation(ns, pod, username, points=ALL):
    labels = {"namespace": ns, "pod": pod}
    if username:
        labels["annotation_hub_jupyter_org_username"] = username
    return ("kube_pod_annotations", labels, 1, points)


def _dirsize(ns, directory, value, points=ALL):
    return ("dirsize_total_size_bytes", {"namespace": ns, "directory": directory}, value, points)


def _group(ns, username, escaped, group):
    labels = dict(namespace=ns, username=username, username_escaped=escaped, usergroup=group)
    return ("jupyterhub_user_group_info", labels, 1, ALL)


def series_for(day: dt.date) -> list[tuple]:
    s = [
        _requests("prod", "jupyter-alice", "notebook", "memory", 2 * GIB, ALL),
        _requests("prod", "jupyter-alice", "notebook", "cpu", 0.5, ALL),
        _annotation("prod", "jupyter-alice", "alice"),
        _requests("prod", "hub-0", "hub", "memory", 8 * GIB, ALL),
        _annotation("prod", "hub-0", None),
        _dirsize("prod", "alice", 10 * GIB),
        _dirsize("prod", "_shared", 100 * GIB),
        _requests("staging", "jupyter-carol", "notebook", "memory", 3 * GIB, ALL),
        _requests("staging", "jupyter-carol", "notebook", "cpu", 0.25, ALL),
        _annotation("staging", "jupyter-carol", "carol"),
        _group("prod", "bob.smith", "bob-2esmith", "none"),
    ]
    if day == D1:
        s += [
            _requests("prod", "jupyter-alice", "sidecar", "memory", GIB // 2, ALL),
            _requests("prod", "jupyter-alice", "sidecar", "cpu", 0.25, ALL),
            _dirsize("prod", "dave-40x", 2 * GIB),
            _requests("staging", "jupyter-frank-name-1a2b", "notebook", "memory", GIB, ALL),
            _requests("staging", "jupyter-frank-name-1a2b", "notebook", "cpu", 0.125, ALL),
            _annotation("staging", "jupyter-frank-name-1a2b", "frank.name"),
            _dirsize("staging", "frank-name-1a2b", GIB),
            _dirsize("staging", "carol", 3 * GIB),
            _group("prod", "alice", "alice", "staff"),
            _group("staging", "carol", "carol", "none"),
            _group("staging", "frank.name", "frank-name-1a2b", "research"),
        ]
    if day == D2:
        bob_pod, dask = range(0, 144), range(144, 156)
        s += [
            _requests("prod", "jupyter-bob-2esmith", "notebook", "memory", GIB, bob_pod),
            _requests("prod", "jupyter-bob-2esmith", "notebook", "cpu", 1, bob_pod),
            _annotation("prod", "jupyter-bob-2esmith", "bob.smith", bob_pod),
            _requests("prod", "dask-worker-1", "worker", "memory", 4 * GIB, dask),
            _requests("prod", "dask-worker-1", "worker", "cpu", 2, dask),
            _annotation("prod", "dask-worker-1", "bob.smith", dask),
            _dirsize("prod", "bob-2esmith", 4 * GIB, range(0, 144)),
            _dirsize("staging", "frank-name-1a2b", GIB),
            _dirsize("staging", "carol", 3 * GIB),
            _group("prod", "alice", "alice", "multiple"),
            _group("prod", "alice", "alice", "staff"),
            _group("prod", "alice", "alice", "research"),
        ]
    if day == D3:
        s += [
            _dirsize("staging", "carol", 3 * GIB, range(0, 96)),
            _group("prod", "alice", "alice", "research"),
        ]
    return s


def _bob_second_half(day):
    # The same series as bob's 4 GiB directory, 6 GiB from point 144 on.
    if day == D2:
        return [_dirsize("prod", "bob-2esmith", 6 * GIB, range(144, 288))]
    if day == D3:
        return [_dirsize("staging", "carol", 6 * GIB, range(96, 192))]
    return []


def openmetrics(day: dt.date) -> str:
    """One day's samples as an OpenMetrics text file (metric families kept together)."""
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
    samples = defaultdict(list)  # (name, labels) -> [(ts, value)]
    for name, labels, value, points in series_for(day) + _bob_second_half(day):
        key = (name, tuple(sorted(labels.items())))
        for p in points:
            if name == "jupyterhub_user_group_info":
                # Group samples fall inside the day, the last at 23:59:30, which the day's
                # snapshot (evaluated at 23:59:59) sees.
                ts = midnight + 300 * (p + 1) - 30
            else:
                ts = midnight + 300 * p - 30
            samples[key].append((ts, value))
    lines = []
    for name in sorted({n for n, _ in samples}):
        lines.append(f"# TYPE {name} gauge")
        for (n, labels), points in sorted(samples.items()):
            if n != name:
                continue
            text = ",".join(f'{k}="{v}"' for k, v in labels)
            for ts, value in sorted(points):
                lines.append(f"{name}{{{text}}} {value} {ts:.0f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def binaries_missing() -> str | None:
    missing = [b for b in ("prometheus", "promtool") if shutil.which(b) is None]
    return f"needs {' and '.join(missing)} (Debian's prometheus package)" if missing else None


def write_history(tsdb: Path, workdir: Path) -> None:
    for day in DAYS:
        source = workdir / f"{day}.om"
        source.write_text(openmetrics(day))
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
            check=True,
            capture_output=True,
            timeout=120,
        )


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: each socket stays bound until all are chosen (the
    kernel may hand a just-closed port out again, and two servers of one test then collide)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def _die_with_parent() -> None:
    # A test run killed before its teardown must not leave a Prometheus behind (Linux only).
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_server(tsdb: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    config = workdir / "prometheus.yml"
    config.write_text("global: {}\nscrape_configs: []\n")
    port = free_port()
    with (workdir / "prometheus.log").open("w") as log_file:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tsdb}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited: see {workdir / 'prometheus.log'}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("prometheus did not become ready within 60 s")
