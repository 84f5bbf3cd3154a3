"""The calibration store: calibrated values beside the lab config, versioned, with history.

One YAML file per network, ``lab_configs/<network>.calibration.yaml`` (see
:meth:`CalibrationStore.beside`). Every calibration run appends a record to its key's
history: a version number (1, 2, ... per key), a UTC timestamp, the value with its
uncertainty and unit, whether it passed, why, and which routine produced it. Later runs use
:meth:`CalibrationStore.latest`, the latest record that *passed*: a failed calibration stays
in the history with its reason, and the previous value stays in force.

The file is validated with pydantic on every load; a corrupt or hand-broken file raises a
:class:`CalibrationStoreError` that names the file and the problem. Writes are atomic (a
temporary file in the same folder, then ``os.replace``), so a crash never leaves half a file.
"""

from __future__ import annotations

import math
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sequences.attempt_loop import NodeOptics

from .network_config import format_validation_error

#: Version of the file layout; a file with another version is rejected.
SCHEMA_VERSION = 1

#: Keys (after ``<node>.`` or ``<a>-<b>.``) that runs read; the unattended plan
#: (``control.calibrate``) writes them.
LASER_WAVELENGTH = "laser.resonance_wavelength_nm"
CONVERTER_TEMPERATURE = "frequency_converter.optimal_temperature_c"
SPIN_RESONANCE = "spin.resonance_frequency_hz"
PI_PULSE_AMPLITUDE = "spin.pi_pulse_amplitude_v"
ALPHA = "alpha"
READOUT_F0 = "qubit_controller.f0"
READOUT_F1 = "qubit_controller.f1"


class CalibrationStoreError(ValueError):
    """The calibration file cannot be read or a record is invalid."""


class CalibrationRecord(BaseModel):
    """One calibration result of one key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, description="1, 2, ... per key, in the order recorded")
    timestamp: datetime = Field(description="when it was recorded (UTC)")
    value: float
    uncertainty: float = Field(ge=0, description="standard uncertainty, same unit as value")
    unit: str
    passed: bool
    reason: str = ""
    source: str = Field("", description="the routine (and run) that produced it")

    @field_validator("value", "uncertainty")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"{v!r} is not a finite number")
        return v

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("timestamp has no time zone; expected UTC")
        return v.astimezone(UTC)


class CalibrationFile(BaseModel):
    """The whole file: schema version and the history of every key, oldest first."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    entries: dict[str, list[CalibrationRecord]] = {}

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"schema_version={v}: expected {SCHEMA_VERSION}")
        return v


class _Quantity(Protocol):
    value: float
    uncertainty: float
    unit: str


class _Result(Protocol):
    """What :meth:`CalibrationStore.record_result` needs of a routine's result."""

    routine: str
    passed: bool
    reason: str

    @property
    def quantities(self) -> dict[str, Any]: ...


class CalibrationStore:
    """Calibrated values of one network, kept in one YAML file (created on first record)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._data = self._load()

    @classmethod
    def beside(cls, network_config: str | os.PathLike[str]) -> CalibrationStore:
        """The store beside a network file: ``two_node.network.yaml`` ->
        ``two_node.calibration.yaml`` in the same folder."""
        config = Path(network_config)
        name = config.name
        for suffix in (".network.yaml", ".network.yml", ".yaml", ".yml"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        return cls(config.with_name(f"{name}.calibration.yaml"))

    # ------------------------------------------------------------------ reading
    def _load(self) -> CalibrationFile:
        if not self.path.exists():
            return CalibrationFile()
        try:
            raw = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise CalibrationStoreError(
                f"calibration file {self.path}: not valid YAML ({exc})"
            ) from None
        if raw is None:
            return CalibrationFile()
        if not isinstance(raw, dict):
            raise CalibrationStoreError(
                f"calibration file {self.path}: expected a mapping with 'schema_version' and "
                f"'entries', got {type(raw).__name__}"
            )
        try:
            data = CalibrationFile.model_validate(raw)
        except ValidationError as exc:
            raise CalibrationStoreError(
                format_validation_error(f"calibration file {self.path}", exc)
            ) from None
        for key, records in data.entries.items():
            versions = [r.version for r in records]
            if versions != list(range(1, len(records) + 1)):
                raise CalibrationStoreError(
                    f"calibration file {self.path}: entries.{key}: versions {versions}, "
                    "expected 1, 2, ... in order"
                )
        return data

    def keys(self) -> list[str]:
        """Every key with at least one record."""
        return sorted(self._data.entries)

    def history(self, key: str) -> list[CalibrationRecord]:
        """Every record of ``key``, oldest first (passed and failed); empty if none."""
        return list(self._data.entries.get(key, []))

    def latest(self, key: str) -> CalibrationRecord | None:
        """The latest record of ``key`` that passed: the value in force (None if none)."""
        for record in reversed(self._data.entries.get(key, [])):
            if record.passed:
                return record
        return None

    def value(self, key: str) -> float:
        """The value in force for ``key``; KeyError naming the key if none passed yet."""
        record = self.latest(key)
        if record is None:
            tried = len(self._data.entries.get(key, []))
            raise KeyError(
                f"no passed calibration of {key!r} in {self.path} ({tried} failed attempts)"
            )
        return record.value

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The value in force of every key (for a run's metadata): value, uncertainty,
        unit, version and ISO timestamp."""
        out: dict[str, dict[str, Any]] = {}
        for key in self.keys():
            record = self.latest(key)
            if record is not None:
                out[key] = {
                    "value": record.value,
                    "uncertainty": record.uncertainty,
                    "unit": record.unit,
                    "version": record.version,
                    "timestamp": record.timestamp.isoformat(),
                }
        return out

    # ------------------------------------------------- what runs take from the store
    def node_optics(self, node: str, base: NodeOptics) -> NodeOptics:
        """``base`` with the node's calibrated values in force: laser on the transition
        (``<node>.laser.resonance_wavelength_nm``), crystal at its phase-matching optimum
        (``<node>.frequency_converter.optimal_temperature_c``, when the run pumps the
        converter) and the MW carrier on the spin resonance
        (``<node>.spin.resonance_frequency_hz``). Keys without a passed value keep ``base``."""
        update: dict[str, float] = {}
        for key, name in (
            (f"{node}.{LASER_WAVELENGTH}", "laser_wavelength_nm"),
            (f"{node}.{SPIN_RESONANCE}", "microwave_frequency_hz"),
        ):
            record = self.latest(key)
            if record is not None:
                update[name] = record.value
        converter = self.latest(f"{node}.{CONVERTER_TEMPERATURE}")
        if converter is not None and base.converter_pump_mw is not None:
            update["converter_temperature_c"] = converter.value
        return base.model_copy(update=update) if update else base

    def pi_pulse_amplitude_v(self, node: str) -> float | None:
        """The node's calibrated pi-pulse amplitude (``<node>.spin.pi_pulse_amplitude_v``)."""
        record = self.latest(f"{node}.{PI_PULSE_AMPLITUDE}")
        return None if record is None else record.value

    def readout(self, node: str) -> tuple[float, float] | None:
        """The node's calibrated readout (F0, F1) (``<node>.qubit_controller.f0``/``f1``), or
        None unless both passed."""
        f0 = self.latest(f"{node}.{READOUT_F0}")
        f1 = self.latest(f"{node}.{READOUT_F1}")
        return (f0.value, f1.value) if f0 is not None and f1 is not None else None

    def alpha(self, links: list[tuple[str, str]]) -> float | None:
        """The calibrated alpha for attempts on ``links`` (``<a>-<b>.alpha``, either order):
        the smallest over the links, so each meets its target fidelity; None unless every
        link has one."""
        values = []
        for a, b in links:
            record = self.latest(f"{a}-{b}.{ALPHA}") or self.latest(f"{b}-{a}.{ALPHA}")
            if record is None:
                return None
            values.append(record.value)
        return min(values) if values else None

    # ------------------------------------------------------------------ writing
    def record(
        self,
        key: str,
        value: float,
        uncertainty: float,
        unit: str,
        passed: bool,
        reason: str = "",
        source: str = "",
        timestamp: datetime | None = None,
    ) -> CalibrationRecord:
        """Append a result to ``key``'s history and write the file (atomically)."""
        if not key or any(c.isspace() for c in key):
            raise CalibrationStoreError(f"key={key!r}: expected a non-empty name without spaces")
        history = self._data.entries.setdefault(key, [])
        try:
            record = CalibrationRecord(
                version=len(history) + 1,
                timestamp=timestamp or datetime.now(UTC),
                value=float(value),
                uncertainty=float(uncertainty),
                unit=unit,
                passed=bool(passed),
                reason=reason,
                source=source,
            )
        except ValidationError as exc:
            if not history:
                del self._data.entries[key]
            raise CalibrationStoreError(format_validation_error(f"record {key!r}", exc)) from None
        history.append(record)
        self._write()
        return record

    def record_result(self, prefix: str, result: _Result) -> dict[str, CalibrationRecord]:
        """Record every quantity of a calibration routine's result as ``<prefix>.<name>``,
        with the result's pass/fail, reason and routine name."""
        out = {}
        for name, q in result.quantities.items():
            out[name] = self.record(
                f"{prefix}.{name}",
                q.value,
                q.uncertainty,
                q.unit,
                result.passed,
                result.reason,
                result.routine,
            )
        return out

    def _write(self) -> None:
        text = yaml.safe_dump(self._data.model_dump(mode="json"), sort_keys=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
