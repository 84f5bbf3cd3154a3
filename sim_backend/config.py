"""Loading the simulated lab's parameters from a YAML file in ``lab_configs/``.

A bad file is rejected with a ``ConfigError`` naming the file, the field, the value and what
was expected, never a traceback from inside pydantic or yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .params import FaultPlan, LabParams


class ConfigError(ValueError):
    """A configuration file or value that cannot be used, with a message fit for an operator."""


class LabFile(BaseModel):
    """The top level of a lab config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    simulated_lab: LabParams
    faults: FaultPlan | None = None


def format_validation_error(source: str, error: ValidationError) -> str:
    """One line per problem: '<source>: <field.path>: <problem> (got <value>)'."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        msg = item["msg"].removeprefix("Value error, ")
        got = item.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{source}: {where}: {msg}{shown}")
    return "\n".join(lines)


def parse_lab_file(data: Any, source: str = "<config>") -> LabFile:
    """Validate already-parsed YAML/JSON data."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return LabFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_lab_file(path: str | Path) -> LabFile:
    """Read and validate a lab config file."""
    return parse_lab_file(_read_yaml(path), str(path))


def load_fault_file(path: str | Path) -> FaultPlan:
    """Read and validate a fault plan: a YAML file whose top level is the ``faults:``
    section of a lab file (``seed`` and the list ``faults``)."""
    data = _read_yaml(path)
    if isinstance(data, dict) and set(data) == {"faults"} and isinstance(data["faults"], dict):
        data = data["faults"]  # a file holding the section under its own key
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'seed' and 'faults'")
    try:
        return FaultPlan.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from None


def _read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return data
