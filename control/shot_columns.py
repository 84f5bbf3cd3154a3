"""The columns of a stored run: what each shot holds (name, kind, unit, label, optional
default), checked value by value as it is stored, and the standard column sets of the
entanglement and teleportation runs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Kind = Literal["float", "int", "text"]
#: the Python type a column of each kind stores: a value of exactly this type is stored as
#: it is (``ShotStore.add_shot``); any other goes through ``_coerce``
STORED_TYPE: dict[str, type] = {"float": float, "int": int, "text": str}
_REQUIRED: Any = object()
_RESERVED = {"shot", "id"}


@dataclass(frozen=True)
class Column:
    """One stored quantity of a shot: ``kind`` is "float", "int" or "text"; a column with a
    ``default`` may be left out of ``add_shot``."""

    name: str
    kind: Kind
    unit: str = ""
    label: str = ""
    default: Any = field(default=_REQUIRED, repr=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name in _RESERVED:
            raise ValueError(
                f"column name {self.name!r}: expected a Python identifier other than "
                f"{sorted(_RESERVED)}"
            )
        if self.kind not in ("float", "int", "text"):
            raise ValueError(f"column {self.name!r}: kind={self.kind!r}: expected float/int/text")
        if self.default is not _REQUIRED:
            object.__setattr__(self, "default", _coerce(self, self.default, "default"))

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "unit": self.unit}
        out["label"] = self.label
        if not self.required:
            out["default"] = self.default
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Column:
        return cls(
            d["name"], d["kind"], d.get("unit", ""), d.get("label", ""), d.get("default", _REQUIRED)
        )


@dataclass(frozen=True)
class Sweep:
    """The parameter swept across a run; its value is stored per shot in ``sweep_value``."""

    name: str
    unit: str = ""


def _coerce(col: Column, value: Any, where: str = "add_shot") -> Any:
    """The value to store for ``col``, or a ValueError naming column, value and expectation."""
    if col.kind == "text":
        if isinstance(value, str):
            return str(value)
        expected = "a text value (str)"
    elif col.kind == "int":
        if isinstance(value, (int, np.integer, np.bool_)):
            return int(value)
        expected = "an integer"
    else:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        ):
            return float(value)
        expected = "a real number"
    raise ValueError(
        f"{where}: column {col.name!r} = {value!r} ({type(value).__name__}): expected {expected}"
    )


#: Standard columns of a heralded-entanglement run (verification in XX, YY or ZZ).
ENTANGLEMENT_COLUMNS: tuple[Column, ...] = (
    Column("pair_id", "text", label="Pair id"),
    Column("link", "text", label="Link"),
    Column("bell_state", "text", label="Heralded Bell state"),
    Column("attempts", "int", label="Attempts to success"),
    Column("herald_time_s", "float", "s", "Herald time"),
    Column("delivered_time_s", "float", "s", "Delivery time"),
    Column("basis", "text", label="Measurement basis"),
    Column("outcome_a", "int", label="Outcome A"),
    Column("outcome_b", "int", label="Outcome B"),
    Column("fidelity_exact", "float", label="Exact fidelity (simulation only)", default=math.nan),
)
#: Teleportation adds the input state and whether the receiver's outcome was the right one.
TELEPORTATION_COLUMNS: tuple[Column, ...] = ENTANGLEMENT_COLUMNS + (
    Column("input_state", "text", label="Input state"),
    Column("correct", "int", label="Correct outcome"),
)
