"""The packages import one way: `core` below everything, `etl` and `api` beside each other (never
importing one another), `migrations` on `core`, and only the `hubcost` CLI above them all."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

PROJECT = ("core", "etl", "api", "migrations", "hubcost")
ALLOWED = {
    "core": {"core"},
    "etl": {"core", "etl"},
    "api": {"core", "api"},
    "migrations": {"core", "migrations"},
    "hubcost": set(PROJECT),
}


def imported_packages(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in PROJECT:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", PROJECT)
def test_a_package_imports_only_what_sits_below_it(package):
    wrong = {
        top: files
        for top, files in imported_packages(package).items()
        if top not in ALLOWED[package]
    }
    assert wrong == {}, (
        f"{package} imports {sorted(wrong)} from {sorted(set().union(*wrong.values()))}"
    )
