"""The Dockerfile and .dockerignore, read as text (no Docker engine here): two stages running the
wheel test's own build and install commands, a non-root final stage that starts `hubcost serve`,
and a build context that holds every file of the packages and none of the local clutter."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from core.settings import Settings
from hubcost.cli import build_parser
from tests.conftest import ROOT
from tests.deploy import manifests as m
from tests.packaging.wheel_commands import BUILD_WHEEL, INSTALL_WHEEL

BASE_IMAGE = "python:3.12-slim"
FOREIGN_ENV = ("PYTHON", "PIP_")  # the interpreter's and pip's own variables


def template(command: tuple[str, ...]) -> re.Pattern:
    """A wheel command as a pattern; each {placeholder} becomes a named group."""
    parts = []
    for word in command:
        if re.fullmatch(r"\{\w+\}", word):
            parts.append(rf"(?P<{word[1:-1]}>\S+)")
        else:
            parts.append(re.escape(word))
    return re.compile(r"(?:^|&&\s*|;\s*|\s)" + r"\s+".join(parts) + r"(?=\s|$)")


def run_lines(stage: m.Stage) -> list[str]:
    return [i.arguments for i in stage.all("RUN")]


def find(command: tuple[str, ...], stage: m.Stage) -> re.Match:
    pattern = template(command)
    found = [match for line in run_lines(stage) if (match := pattern.search(line))]
    assert len(found) == 1, f"{' '.join(command)} is not run once in stage {stage.name}"
    return found[0]


def test_two_stages_on_the_same_slim_python():
    build, final = m.dockerfile_stages()
    assert build.base == final.base == BASE_IMAGE
    assert build.name and final.name is None


def test_the_build_stage_runs_the_wheel_tests_build_command():
    build, _ = m.dockerfile_stages()
    filled = find(BUILD_WHEEL, build)
    assert filled["source"] == "."
    assert build.last("WORKDIR") is not None
    assert any(i.arguments.split() == [".", "."] for i in build.all("COPY")), "COPY . ."
    assert filled["wheels"].startswith("/")


def test_the_final_stage_installs_that_wheel_and_nothing_else():
    build, final = m.dockerfile_stages()
    wheels = find(BUILD_WHEEL, build)["wheels"]
    filled = find(INSTALL_WHEEL, final)
    # Filled with a glob over the build stage's wheel directory, mounted for that RUN only.
    (install,) = [line for line in run_lines(final) if filled.group(0).strip() in line]
    mount = re.search(r"--mount=type=bind,(\S+)", install)
    assert mount, "the wheel is not bind-mounted from the build stage"
    options = dict(item.split("=", 1) for item in mount[1].split(","))
    assert options["from"] == build.name and options["source"] == wheels
    assert filled["wheel"] == f"{options['target']}/hubcost-*.whl"
    assert "--no-cache-dir" in INSTALL_WHEEL
    # No sources, build leftovers, pip cache or compiler in the final stage.
    assert final.all("COPY") == [] and final.all("ADD") == []
    for line in run_lines(final):
        assert not re.search(r"\b(apt-get|apt|apk|yum|dnf)\b", line), line
        assert not re.search(r"\b(gcc|g\+\+|build-essential|make)\b", line), line


def test_the_final_stage_runs_hubcost_serve_as_a_numeric_non_root_user():
    _, final = m.dockerfile_stages()
    uid = m.final_user_id()
    assert uid != 0
    assert final.last("ENTRYPOINT").exec_form() == ["hubcost"]
    cmd = final.last("CMD").exec_form()
    assert cmd == ["serve", "--host", "0.0.0.0"]
    args = build_parser().parse_args(cmd)
    assert args.command == "serve"
    (expose,) = final.all("EXPOSE")
    assert int(expose.arguments) == args.port, "EXPOSE is not the port serve listens on"
    # The user is created before USER switches to it.
    (created,) = [line for line in run_lines(final) if "useradd" in line]
    assert f"--uid {uid}" in created


def final_env() -> dict[str, str]:
    _, final = m.dockerfile_stages()
    env = {}
    for instruction in final.all("ENV"):
        for pair in instruction.arguments.split():
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def test_the_data_directory_is_the_users_and_is_the_setting():
    env = final_env()
    data_dir = env["HUBCOST_DATA_DIR"]
    assert Settings.from_env({"HUBCOST_DATA_DIR": data_dir}).data_dir == Path(data_dir)
    uid = m.final_user_id()
    _, final = m.dockerfile_stages()
    owned = [
        line
        for line in run_lines(final)
        if re.search(rf"install -d -o {uid} -g \d+ -m \d+ {re.escape(data_dir)}(\s|$)", line)
    ]
    assert owned, f"{data_dir} is not created owned by {uid}"
    assert final.last("WORKDIR").arguments == data_dir


def test_every_variable_the_image_sets_is_a_setting_or_pythons():
    documented = m.readme_settings()
    for name in final_env():
        assert name in documented or name.startswith(FOREIGN_ENV), name


def package_files() -> list[str]:
    """The files the wheel is built from, as the wheel test's source copy has them."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tops = {pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]}
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files = [
        name
        for name in filter(None, listed.split("\0"))
        if name.split("/")[0] in tops and (ROOT / name).is_file()
    ]
    assert {name.split("/")[0] for name in files} == tops
    return files + ["pyproject.toml", "README.md"]


def test_the_build_context_holds_the_packages_and_no_clutter():
    rules = m.dockerignore_rules()
    let_out = [name for name in package_files() if m.ignored(name, rules)]
    assert let_out == [], ".dockerignore leaves out files the wheel is built from"
    for clutter in (
        ".venv/bin/python",
        "var/test-pgdata/PG_VERSION",
        ".git/HEAD",
        "api/__pycache__/app.cpython-312.pyc",
        ".pytest_cache/README.md",
        ".ruff_cache/CACHEDIR.TAG",
        "hubcost.egg-info/PKG-INFO",
        "build/lib/api/app.py",
        "dist/hubcost-0.1.0-py3-none-any.whl",
        "tests/conftest.py",
        "bench/run.py",
    ):
        assert m.ignored(clutter, rules), clutter
