"""What tests/deploy reads: the rendered kustomize base, the Dockerfile, the .dockerignore, the
operator guide's Kubernetes examples and the README's Settings table.

No Docker engine and no cluster are needed: `kubectl kustomize` renders offline and the rest is
plain text. A missing or too old kubectl is a skip, which CI=true turns into a failure.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

BASE = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
GUIDE = ROOT / "docs" / "operations.md"
README = ROOT / "README.md"

KUBECTL_MINIMUM = (1, 27)  # CronJob timeZone is GA from 1.27; kustomize v5 with it
KUBERNETES_SCHEMA = "1.30.0"
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
OVERLAY_HEADER = "# my-site/kustomization.yaml"


# --- kubectl -----------------------------------------------------------------------------


def kubectl() -> str:
    """The kubectl binary, at least KUBECTL_MINIMUM; skips (a failure under CI) otherwise."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed (needed to render deploy/kubernetes)")
    done = subprocess.run(
        [binary, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        pytest.skip(f"`kubectl version --client` failed: {done.stderr.strip()}")
    client = json.loads(done.stdout)["clientVersion"]
    # minor may carry a suffix, e.g. "32+" on vendor builds
    version = tuple(int(re.match(r"\d+", client[part])[0]) for part in ("major", "minor"))
    if version < KUBECTL_MINIMUM:
        wanted = ".".join(map(str, KUBECTL_MINIMUM))
        pytest.skip(f"kubectl {client.get('gitVersion')} is older than {wanted}")
    return binary


def render(directory: Path) -> list[dict]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


# --- workloads ---------------------------------------------------------------------------

WORKLOAD_KINDS = ("Deployment", "CronJob", "Job")


def pod_spec(workload: dict) -> dict:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def workloads(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def containers(objects: list[dict]):
    """(workload, container) for every container and init container."""
    for workload in workloads(objects):
        spec = pod_spec(workload)
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield workload, container


# --- the guide ---------------------------------------------------------------------------


def guide_blocks(lang: str) -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    return [m["body"] for m in FENCE.finditer(text) if m["lang"] == lang]


def guide_overlay() -> dict:
    (overlay,) = [b for b in guide_blocks("yaml") if b.startswith(OVERLAY_HEADER)]
    return yaml.safe_load(overlay)


def guide_network_patches() -> list[dict]:
    (block,) = [
        b for b in guide_blocks("yaml") if b.startswith("patches:") and "NetworkPolicy" in b
    ]
    return yaml.safe_load(block)["patches"]


def guide_cronjob() -> dict:
    (cronjob,) = [
        doc
        for body in guide_blocks("yaml")
        for doc in yaml.safe_load_all(body)
        if isinstance(doc, dict) and doc.get("kind") == "CronJob"
    ]
    return cronjob


def guide_shell_lines() -> list[str]:
    """Every command line of the guide's sh blocks, continuation lines joined."""
    lines = []
    for body in guide_blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def guide_secrets() -> dict[str, set[str]]:
    """Secret name -> keys, from the guide's `kubectl create secret generic` commands."""
    secrets: dict[str, set[str]] = {}
    for line in guide_shell_lines():
        words = shlex.split(line, comments=True)
        if "create" not in words or "secret" not in words:
            continue
        generic = words.index("generic")
        name = words[generic + 1]
        keys = {
            word.removeprefix("--from-literal=").split("=", 1)[0]
            for word in words
            if word.startswith("--from-literal=")
        }
        assert keys, f"a secret without --from-literal keys in the guide: {line}"
        secrets.setdefault(name, set()).update(keys)
    return secrets


def write_overlay(tmp_path: Path, overlay: dict) -> Path:
    """The guide's overlay in tmp_path/my-site, its `../hubcost` a link to this checkout."""
    (tmp_path / "hubcost").symlink_to(ROOT, target_is_directory=True)
    site = tmp_path / "my-site"
    site.mkdir()
    (site / "kustomization.yaml").write_text(yaml.safe_dump(overlay), encoding="utf-8")
    return site


# --- the README ----------------------------------------------------------------------------


def readme_settings() -> set[str]:
    """Every variable named in the first column of the README's Settings table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    assert "DATABASE_URL" in names, "the README's Settings table was not found"
    return names


# --- the Dockerfile --------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        value = json.loads(self.arguments)
        assert isinstance(value, list), f"{self.keyword} is not in exec (JSON) form"
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The Dockerfile's stages: comments dropped, continuation lines joined."""
    logical, current = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1].strip() + " "
            continue
        logical.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return stages


def final_user_id() -> int:
    user = dockerfile_stages()[-1].last("USER")
    assert user is not None, "the final stage sets no USER"
    uid = user.arguments.split(":")[0]
    assert uid.isdigit(), f"USER {user.arguments} is not numeric (runAsNonRoot cannot check it)"
    return int(uid)


# --- the .dockerignore -------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go's filepath.Match plus `**`) as a regular expression."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def dockerignore_rules(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.removeprefix("!").strip().strip("/")
        rules.append((negated, _pattern(line)))
    return rules


def ignored(relative: str, rules=None) -> bool:
    """Whether Docker leaves `relative` (a path in the context) out: the last rule matching
    the path or one of its parent directories wins, as in Docker's patternmatcher."""
    rules = dockerignore_rules() if rules is None else rules
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, pattern in rules:
        if any(pattern.match(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded
