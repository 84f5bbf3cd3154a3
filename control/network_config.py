"""The network file: nodes, their stations, heralding stations, and the one backend switch.

A network file (``lab_configs/<network>.network.yaml``) holds what the QCoDeS Station format
cannot: which node a station belongs to, which instrument fills which role, the heralding
station of each link with its detector and time-tagger channels, and whether the network
runs on the simulated lab or on real instruments (``backend``). The stations themselves are
QCoDeS Station YAML files (``<node>.station.yaml``), validated strictly against QCoDeS'
schema here (QCoDeS itself only warns). Everything is checked before any instrument is
touched; every error names the file, the field, the value and what was expected.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.registry import DRIVERS, DriverEntry

from .calibrate_config import CalibrationThresholds

RoleName = Literal[
    "laser",
    "optical_switch",
    "awg",
    "microwave",
    "frequency_converter",
    "qubit_controller",
    "detectors",
    "time_tagger",
]

#: The HAL role each role name must be filled with (drivers.hal protocol names).
ROLE_PROTOCOLS: dict[str, str] = {
    "laser": "Laser",
    "optical_switch": "OpticalSwitch",
    "awg": "AWG",
    "microwave": "MicrowaveSource",
    "frequency_converter": "FrequencyConverter",
    "qubit_controller": "QubitDevice",
    "detectors": "PhotonDetector",
    "time_tagger": "TimeTagger",
}


class NetworkConfigError(ValueError):
    """A network or station file that cannot be used; the message is fit for an operator."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeConfig(_Strict):
    """A node: its station file and which of its instruments fills which role."""

    station: str = Field(min_length=1, description="QCoDeS station file, relative to this file")
    role: Literal["end", "repeater"] = "end"
    instruments: dict[RoleName, str] = Field(
        description="role -> instrument name in the station file"
    )
    optical_switch_channel: int = Field(1, ge=1, le=16)


class ChannelPair(_Strict):
    """An instrument at the station and its channels behind the '+' and '-' output ports."""

    instrument: str = Field(min_length=1)
    plus: int = Field(1, ge=1, le=64)
    minus: int = Field(2, ge=1, le=64)

    @model_validator(mode="after")
    def _distinct(self) -> ChannelPair:
        if self.plus == self.minus:
            raise ValueError(f"plus={self.plus} and minus={self.minus}: expected two channels")
        return self


class HeraldingStationConfig(_Strict):
    """The beam splitter, detectors and time tagger between two nodes."""

    station: str = Field(min_length=1)
    link: tuple[str, str]
    detectors: ChannelPair
    time_tagger: ChannelPair


class SecurityConfig(_Strict):
    """Where the network's CURVE keys live (``qnode keygen`` writes them): ``<node>.key`` and
    ``<node>.key_secret`` for each node controller, ``orchestrator.key*`` for the
    orchestrator, and ``allowed/`` holding the public keys of the clients nodes accept."""

    keys_dir: str = Field(min_length=1, description="folder, relative to the network file")


class NetworkConfig(_Strict):
    """The top level of a network file."""

    name: str = Field(min_length=1)
    description: str = ""
    backend: Literal["simulated", "lab"] = Field(
        "simulated", description="the one switch: simulated lab or real instruments"
    )
    seed: int = Field(0, ge=0, le=2**63 - 1)
    simulated_lab: str = Field(min_length=1, description="physics of the simulated lab (file)")
    nodes: dict[str, NodeConfig]
    heralding_stations: dict[str, HeraldingStationConfig]
    security: SecurityConfig | None = Field(
        None, description="CURVE keys for node processes; without it only --plaintext runs"
    )
    limits: dict[str, dict[str, tuple[float, float]]] = Field(
        default_factory=dict,
        description="instrument -> parameter path (e.g. 'power', 'ch1.amplitude') -> "
        "[min, max]: safety limits no command may exceed",
    )
    calibration: CalibrationThresholds = Field(
        default_factory=CalibrationThresholds,
        description="pass/fail thresholds of the calibration routines",
    )

    @model_validator(mode="after")
    def _stations_join_known_nodes(self) -> NetworkConfig:
        seen: set[frozenset[str]] = set()
        for name, hs in self.heralding_stations.items():
            for node in hs.link:
                if node not in self.nodes:
                    raise ValueError(
                        f"heralding_stations.{name}.link: unknown node {node!r}; "
                        f"expected one of {sorted(self.nodes)}"
                    )
            if frozenset(hs.link) in seen:
                raise ValueError(f"heralding_stations.{name}: a second station for {list(hs.link)}")
            seen.add(frozenset(hs.link))
        return self


@dataclass(frozen=True)
class StationInstrument:
    """One instrument of a station file, resolved to its registered driver."""

    name: str
    station_file: Path
    driver: DriverEntry
    address: str
    init: dict[str, Any]


@dataclass(frozen=True)
class LoadedNetwork:
    """A validated network: its config, the physics file and every station instrument."""

    path: Path
    config: NetworkConfig
    simulated_lab_path: Path
    instruments: dict[str, StationInstrument]  # by instrument name (unique network-wide)
    station_files: dict[str, Path]  # node or heralding-station name -> station file

    @property
    def links(self) -> list[tuple[str, str]]:
        return [hs.link for hs in self.config.heralding_stations.values()]


def format_validation_error(source: str, error: ValidationError) -> str:
    """One line per problem: '<source>: <field.path>: <problem> (got <value>)'."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        got = item.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{source}: {where}: {item['msg'].removeprefix('Value error, ')}{shown}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise NetworkConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise NetworkConfigError(f"{path}: not valid YAML: {exc}") from None


@functools.cache
def _station_validator() -> Any:
    """A validator of QCoDeS' station schema, the schema itself checked once per process
    (``jsonschema.validate`` checks it on every call: 4.4 ms per station file, against
    0.4 ms for the file itself)."""
    from qcodes.station import SCHEMA_TEMPLATE_PATH

    schema = json.loads(Path(SCHEMA_TEMPLATE_PATH).read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _driver_for_type(type_path: str) -> DriverEntry | None:
    module_name, _, cls_name = type_path.rpartition(".")
    for entry in DRIVERS.values():
        if entry.cls.__module__ == module_name and entry.cls.__name__ == cls_name:
            return entry
    return None


def load_station_file(path: Path) -> dict[str, StationInstrument]:
    """Validate a QCoDeS station file strictly (schema, known drivers, addresses)."""
    data = _read_yaml(path)
    # the error jsonschema.validate would raise: the best match of all the problems
    exc = jsonschema.exceptions.best_match(_station_validator().iter_errors(data))
    if exc is not None:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise NetworkConfigError(f"{path}: {where}: {exc.message} (QCoDeS station schema)")
    instruments = {}
    for name, spec in (data.get("instruments") or {}).items():
        entry = _driver_for_type(spec["type"])
        if entry is None:
            known = sorted(f"{e.cls.__module__}.{e.cls.__name__}" for e in DRIVERS.values())
            raise NetworkConfigError(
                f"{path}: instruments.{name}.type: unknown driver {spec['type']!r}; "
                f"expected one of {known}"
            )
        address = spec.get("address")
        if not address:
            raise NetworkConfigError(
                f"{path}: instruments.{name}.address: missing; expected a VISA resource name "
                "such as 'TCPIP0::10.0.0.5::5025::SOCKET'"
            )
        instruments[name] = StationInstrument(name, path, entry, address, spec.get("init") or {})
    return instruments


def load_network(path: str | Path) -> LoadedNetwork:
    """Read and validate a network file and every station file it names."""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise NetworkConfigError(f"{path}: expected a mapping at the top level")
    try:
        config = NetworkConfig.model_validate(data)
    except ValidationError as exc:
        raise NetworkConfigError(format_validation_error(str(path), exc)) from None
    base = path.parent
    instruments: dict[str, StationInstrument] = {}
    station_files: dict[str, Path] = {}
    parts: list[tuple[str, str, dict[str, str]]] = [
        (f"nodes.{n}", n, dict(c.instruments)) for n, c in config.nodes.items()
    ]
    parts += [
        (
            f"heralding_stations.{n}",
            n,
            {"detectors": c.detectors.instrument, "time_tagger": c.time_tagger.instrument},
        )
        for n, c in config.heralding_stations.items()
    ]
    station_of = {n: c.station for n, c in config.nodes.items()}
    station_of.update({n: c.station for n, c in config.heralding_stations.items()})
    for field, owner, roles in parts:
        station_path = base / station_of[owner]
        station_files[owner] = station_path
        found = load_station_file(station_path)
        for name, inst in found.items():
            if name in instruments and instruments[name].station_file != station_path:
                raise NetworkConfigError(
                    f"{station_path}: instruments.{name}: duplicate instrument name, also in "
                    f"{instruments[name].station_file}; names must be unique in a network"
                )
            instruments[name] = inst
        for role, name in roles.items():
            if name not in found:
                raise NetworkConfigError(
                    f"{path}: {field}.instruments.{role}: {name!r} is not in {station_path.name}; "
                    f"its instruments: {sorted(found)}"
                )
            expected = ROLE_PROTOCOLS[role]
            if found[name].driver.role.__name__ != expected:
                raise NetworkConfigError(
                    f"{path}: {field}.instruments.{role}: {name!r} is a "
                    f"{found[name].driver.description} ({found[name].driver.role.__name__}); "
                    f"the {role} role needs a {expected}"
                )
    for inst_name, params in config.limits.items():
        if inst_name not in instruments:
            raise NetworkConfigError(
                f"{path}: limits.{inst_name}: no such instrument; "
                f"instruments: {sorted(instruments)}"
            )
        for param, (low, high) in params.items():
            if not low <= high:
                raise NetworkConfigError(
                    f"{path}: limits.{inst_name}.{param}: [{low}, {high}] is empty; "
                    "expected [min, max] with min <= max"
                )
    lab_path = base / config.simulated_lab
    if not lab_path.exists():
        raise NetworkConfigError(f"{path}: simulated_lab: no such file {lab_path}")
    return LoadedNetwork(path, config, lab_path, instruments, station_files)
