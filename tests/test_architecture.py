"""The layering of DESIGN.md, checked on the source: control -> sequences -> drivers <-
sim_backend, and only the backend factory may reach the simulated lab."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

#: package -> packages it must never import
FORBIDDEN = {
    "drivers": {"control", "sequences", "sim_backend"},
    "sim_backend": {"control", "sequences"},
    "sequences": {"control", "sim_backend"},
    "control": {"sim_backend"},
}
#: the modules that choose simulated or real instruments (in-process, or served to processes)
ALLOWED = {("control", "backend.py"): {"sim_backend"}, ("control", "simlab.py"): {"sim_backend"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_it_must_not(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        allowed = ALLOWED.get((package, path.name), set())
        bad = (_imports(path) & FORBIDDEN[package]) - allowed
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_the_rule_catches_an_offender(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from sim_backend.lab import SimulatedLab\nimport control.cli\n")
    assert _imports(module) == {"sim_backend", "control"}
