"""The backend factory: build a network's stations on real instruments or on the simulated
lab, from the same network and station files, with the same drivers.

This is the only module of ``control/`` that may import ``sim_backend``: it chooses what sits
on the far side of each VISA resource. Everything above it programs against the drivers and
the HAL roles and cannot tell the simulated lab from the real one.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyvisa
import qcodes

from drivers.base import QNodeVisaInstrument

from .network_config import (
    LoadedNetwork,
    NetworkConfigError,
    format_validation_error,
    load_network,
)

#: Constructor arguments a driver and its simulated instrument share (the unit's variant):
#: a station file's ``init`` passes them to both, so both accept the same ranges.
_SHARED_RANGE_ARGUMENTS = (
    "wavelength_range_nm",
    "power_range_dbm",
    "power_range_mw",
    "current_range_ma",
    "frequency_range_hz",
)


@dataclass
class Network:
    """The instruments of every node and heralding station of a network, connected."""

    loaded: LoadedNetwork
    backend: str
    instruments: dict[str, QNodeVisaInstrument]
    stations: dict[str, qcodes.Station]
    simulated_lab: Any = None  # the SimulatedHardware of a simulated run (tests, reports)
    seed: int | None = None  # the simulated lab's seed (None in the lab)
    faulty: dict[str, Any] = field(default_factory=dict)  # fault injection, by instrument
    _closed: bool = field(default=False, repr=False)

    def instrument(self, owner: str, role: str) -> QNodeVisaInstrument:
        """The instrument filling ``role`` at node or heralding station ``owner``."""
        config = self.loaded.config
        if owner in config.nodes:
            roles = dict(config.nodes[owner].instruments)
        elif owner in config.heralding_stations:
            hs = config.heralding_stations[owner]
            roles = {"detectors": hs.detectors.instrument, "time_tagger": hs.time_tagger.instrument}
        else:
            known = sorted(config.nodes) + sorted(config.heralding_stations)
            raise KeyError(f"no node or heralding station {owner!r}; known: {known}")
        if role not in roles:
            raise KeyError(f"{owner!r} has no instrument in role {role!r}; roles: {sorted(roles)}")
        return self.instruments[roles[role]]

    def classical_delay_s(self, sender: str, receiver: str) -> float:
        """Flight time of a classical message between two nodes that the simulated lab must
        account for (fibre along the links plus processing latency); 0 in the lab, where the
        real message takes its real time."""
        if self.simulated_lab is None:
            return 0.0
        return self.simulated_lab.classical_delay_s(sender, receiver)

    def exact_fidelity(self, node: str, qubit: int, theta: float, phi: float) -> float | None:
        """Fidelity of a node's qubit to cos(theta/2)|0> + e^{i phi} sin(theta/2)|1>: only
        the simulated lab can know it (None in the lab)."""
        if self.simulated_lab is None:
            return None
        return self.simulated_lab.qubit_fidelity(node, qubit, theta, phi)

    def exact_pair_fidelity(
        self, a: str, qubit_a: int, b: str, qubit_b: int, bell_state: str
    ) -> float | None:
        """Fidelity of two nodes' qubits to a Bell state: simulated lab only (None in the lab)."""
        if self.simulated_lab is None:
            return None
        return self.simulated_lab.pair_fidelity(a, qubit_a, b, qubit_b, bell_state)

    def readout_calibration(self, node: str) -> tuple[float, float] | None:
        """(F0, F1) of a node's communication-qubit readout. In the simulated lab these are
        the simulated device's values (what a readout calibration would find); in the lab
        they come from the calibration store (not yet available: None)."""
        if self.simulated_lab is None:
            return None
        return self.simulated_lab.readout_fidelities(node)

    def fault_report(self) -> dict[str, Any]:
        """Faults injected by the simulated lab, and what each driver did about its faults
        (retries, reconnects, reboots; ``drivers.resilience``), by instrument."""
        injected = {name: f.counts() for name, f in self.faulty.items() if f.log}
        handled = {
            name: inst.resilience.stats.as_dict()
            for name, inst in self.instruments.items()
            if inst.resilience.stats.faults
        }
        return {"injected": injected, "handled": handled}

    def safe_state(self) -> dict[str, str]:
        """Every instrument to its safe state; each is tried, failures are returned (by
        instrument name), none is skipped."""
        failures = {}
        for name, inst in self.instruments.items():
            try:
                inst.safe_state()
            except Exception as exc:  # report and go on: the others must still be made safe
                failures[name] = f"{type(exc).__name__}: {exc}"
        return failures

    def close(self) -> None:
        if self._closed:
            return
        for inst in self.instruments.values():
            inst.close()
        self._closed = True

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def validate_lab_file(path: str | Path) -> Any:
    """Validate a simulated lab's physics file (``sim_backend.config``); raises
    NetworkConfigError with the file, field, value and expectation."""
    from sim_backend.config import ConfigError, load_lab_file

    try:
        return load_lab_file(path)
    except ConfigError as exc:
        raise NetworkConfigError(str(exc)) from None


def open_network(
    path: str | Path,
    backend: str | None = None,
    seed: int | None = None,
    *,
    only: list[str] | None = None,
    simlab: str | Path | None = None,
    link_overrides: dict[str, Any] | None = None,
    faults: str | Path | None = None,
) -> Network:
    """Validate the network file and its station files, then connect the instruments.
    ``link_overrides`` changes every link of the simulated lab (e.g. a sweep's fibre length).

    ``backend`` ('simulated' or 'lab') overrides the file's own switch; ``seed`` the
    simulated lab's seed (default: the network file's). ``only`` restricts the instruments
    to those of the named nodes / heralding stations (a node process opens its own);
    ``simlab`` is the port map of a simulated lab served by another process, shared by all
    node processes. ``faults`` is a fault plan file for a dry run (default: the physics
    file's ``faults:`` section, if any; ``sim_backend.instruments.faults``).
    """
    loaded = load_network(path)
    chosen = backend or loaded.config.backend
    if chosen not in ("simulated", "lab"):
        raise NetworkConfigError(f"backend={chosen!r}: expected 'simulated' or 'lab'")
    names = _instrument_names(loaded, only)
    if faults is not None and (chosen == "lab" or simlab is not None):
        where = "the lab" if chosen == "lab" else "a shared simulated lab (give it to qnode simlab)"
        raise NetworkConfigError(f"--faults {faults}: fault injection cannot be used on {where}")
    if chosen == "lab":
        return _open_lab(loaded, names)
    if simlab is not None:
        return _open_remote_simulated(loaded, Path(simlab), names)
    seed = loaded.config.seed if seed is None else seed
    return _open_simulated(loaded, seed, names, link_overrides, faults)


def _instrument_names(loaded: LoadedNetwork, only: list[str] | None) -> list[str]:
    if only is None:
        return list(loaded.instruments)
    unknown = sorted(set(only) - set(loaded.station_files))
    if unknown:
        raise NetworkConfigError(
            f"{loaded.path}: no node or heralding station {unknown}; "
            f"known: {sorted(loaded.station_files)}"
        )
    files = {loaded.station_files[o] for o in only}
    return [n for n, i in loaded.instruments.items() if i.station_file in files]


def _owner_of(loaded: LoadedNetwork, instrument: str) -> str:
    """The node (or heralding station) whose station file holds ``instrument``."""
    path = loaded.instruments[instrument].station_file
    return next(owner for owner, f in loaded.station_files.items() if f == path)


def apply_limits(loaded: LoadedNetwork, instruments: dict[str, QNodeVisaInstrument]) -> None:
    """Install the network file's safety limits on the connected instruments' parameters."""
    for inst_name, params in loaded.config.limits.items():
        if inst_name not in instruments:
            continue  # another process owns it
        inst = instruments[inst_name]
        for path, (low, high) in params.items():
            target: Any = inst
            try:
                for part in path.split("."):
                    target = getattr(target, part)
            except AttributeError:
                raise NetworkConfigError(
                    f"{loaded.path}: limits.{inst_name}.{path}: {inst_name} has no parameter "
                    f"{path!r}; parameters: {sorted(inst.parameters)}"
                ) from None
            if not hasattr(target, "set_lab_limit"):
                raise NetworkConfigError(
                    f"{loaded.path}: limits.{inst_name}.{path}: not a settable parameter"
                )
            target.set_lab_limit(low, high, f"limits.{inst_name}.{path} in {loaded.path.name}")


def _stations(loaded: LoadedNetwork, instruments: dict[str, QNodeVisaInstrument]):
    try:
        apply_limits(loaded, instruments)
    except Exception:
        for inst in instruments.values():
            inst.close()
        raise
    stations = {}
    for owner, station_file in loaded.station_files.items():
        members = [
            instruments[i.name]
            for i in loaded.instruments.values()
            if i.station_file == station_file and i.name in instruments
        ]
        if members:
            # Added without refreshing each instrument's snapshot: qcodes.Station(*members)
            # would read every gettable parameter of every instrument (about 750 queries for
            # the three-node chain) and discard the result.
            station = stations[owner] = qcodes.Station()
            for member in members:
                station.add_component(member, update_snapshot=False)
    return stations


class InstrumentConnectionError(RuntimeError):
    """An instrument of the network could not be reached; names station, instrument, address."""


def _open_lab(loaded: LoadedNetwork, names: list[str]) -> Network:
    """Connect every instrument at its address; on the first failure, make the ones already
    connected safe, close them, and say which instrument failed and why."""
    instruments: dict[str, QNodeVisaInstrument] = {}
    for inst in (loaded.instruments[n] for n in names):
        try:
            instruments[inst.name] = inst.driver.cls(inst.name, address=inst.address, **inst.init)
        except Exception as exc:
            for created in instruments.values():
                try:
                    created.safe_state()
                finally:
                    created.close()
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InstrumentConnectionError(
                f"{inst.station_file}: instruments.{inst.name} ({inst.driver.description}) "
                f"at {inst.address}: could not connect: {reason}"
            ) from exc
    return Network(loaded, "lab", instruments, _stations(loaded, instruments))


def build_simulated_lab(
    loaded: LoadedNetwork, seed: int, link_overrides: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The simulated lab of a network: its hardware (physics wired to instruments) and one
    simulated instrument per station instrument, by name. Checks that the physics file
    describes the network's nodes and links."""
    from sim_backend.hardware import NodeWiring, SimulatedHardware, StationWiring
    from sim_backend.instruments.registry import simulated_model
    from sim_backend.lab import SimulatedLab

    config = loaded.config
    lab_file = validate_lab_file(loaded.simulated_lab_path)
    physics = lab_file.simulated_lab
    if set(physics.nodes) != set(config.nodes):
        raise NetworkConfigError(
            f"{loaded.path}: nodes {sorted(config.nodes)} differ from the simulated lab's "
            f"nodes {sorted(physics.nodes)} in {loaded.simulated_lab_path.name}"
        )
    physics_links = {frozenset(lk.nodes) for lk in physics.links}
    station_links = {frozenset(link) for link in loaded.links}
    if physics_links != station_links:
        raise NetworkConfigError(
            f"{loaded.path}: heralding stations serve links {sorted(map(sorted, station_links))} "
            f"but {loaded.simulated_lab_path.name} has links {sorted(map(sorted, physics_links))}"
        )
    if link_overrides:
        physics = _override_links(physics, link_overrides, loaded)
    lab = SimulatedLab(physics, seed=seed)
    nodes = [
        NodeWiring(
            node=name,
            laser=node.instruments.get("laser"),
            optical_switch=node.instruments.get("optical_switch"),
            optical_switch_channel=node.optical_switch_channel,
            awg=node.instruments.get("awg"),
            microwave=node.instruments.get("microwave"),
            frequency_converter=node.instruments.get("frequency_converter"),
            qubit_controller=node.instruments.get("qubit_controller"),
        )
        for name, node in config.nodes.items()
    ]
    stations = [
        StationWiring(
            link=hs.link,
            detectors=hs.detectors.instrument,
            detector_channels=(hs.detectors.plus, hs.detectors.minus),
            time_tagger=hs.time_tagger.instrument,
            tagger_channels=(hs.time_tagger.plus, hs.time_tagger.minus),
        )
        for hs in config.heralding_stations.values()
    ]
    hardware = SimulatedHardware(lab, nodes, stations)
    counter_rng = np.random.default_rng(seed + 2)  # counters sample Poisson counts
    simulated: dict[str, Any] = {}
    for inst in loaded.instruments.values():
        model = simulated_model(inst.driver.name)
        parameters = inspect.signature(model).parameters
        extra: dict[str, Any] = {"rng": counter_rng} if "rng" in parameters else {}
        if "node" in parameters:
            extra["node"] = _owner_of(loaded, inst.name)
        extra.update({k: v for k, v in inst.init.items() if k in _SHARED_RANGE_ARGUMENTS})
        simulated[inst.name] = model(inst.name, hooks=hardware, **extra)
        hardware.attach(simulated[inst.name])
    return hardware, simulated


def _connect(
    loaded: LoadedNetwork, names: list[str], open_one: Any
) -> dict[str, QNodeVisaInstrument]:
    """Create the drivers of ``names``; on a failure close the ones already created."""
    instruments: dict[str, QNodeVisaInstrument] = {}
    try:
        for name in names:
            instruments[name] = open_one(loaded.instruments[name])
    except Exception:
        for created in instruments.values():
            created.close()
        raise
    return instruments


def _override_links(physics: Any, overrides: dict[str, Any], loaded: LoadedNetwork) -> Any:
    """The simulated lab with every link's parameters changed (a sweep point); validated
    like the file. ``fibre_length_km`` is the node-to-node length, split at the midpoint."""
    from pydantic import ValidationError

    update = dict(overrides)
    if "fibre_length_km" in update:
        total = float(update["fibre_length_km"])
        update["fibre_length_km"] = (total / 2, total / 2)
    try:
        links = [type(lk).model_validate({**lk.model_dump(), **update}) for lk in physics.links]
        return type(physics).model_validate({**physics.model_dump(), "links": links})
    except ValidationError as exc:
        source = f"{loaded.simulated_lab_path}: override {overrides}"
        raise NetworkConfigError(format_validation_error(source, exc)) from None


def _open_simulated(
    loaded: LoadedNetwork,
    seed: int,
    names: list[str],
    link_overrides: dict[str, Any] | None,
    faults: str | Path | None = None,
) -> Network:
    from sim_backend.instruments.visa_library import SimulatedVisaLibrary

    from .simlab import faulty_instruments

    hardware, simulated = build_simulated_lab(loaded, seed, link_overrides)
    faulty = faulty_instruments(loaded, simulated, faults)
    library = SimulatedVisaLibrary()
    for inst in loaded.instruments.values():
        library.attach(inst.address, faulty.get(inst.name, simulated[inst.name]))
    manager = pyvisa.ResourceManager(library)
    instruments = _connect(
        loaded,
        names,
        lambda inst: inst.driver.cls(
            inst.name, resource=manager.open_resource(inst.address), **inst.init
        ),
    )
    for driver in instruments.values():
        driver.resilience.sleep = _no_sleep  # a dry run backs off in no time (principle 3)
    stations = _stations(loaded, instruments)
    return Network(loaded, "simulated", instruments, stations, hardware, seed, faulty)


def _no_sleep(seconds: float) -> None:
    """Back-off in a dry run: recorded by the driver's fault statistics, never slept."""


def _open_remote_simulated(loaded: LoadedNetwork, simlab: Path, names: list[str]) -> Network:
    """Drivers connected over loopback TCP to a simulated lab served by another process
    (``qnode simlab``), whose port map file says where each instrument is."""
    import json

    from .simlab_client import RemoteSimulatedLab

    try:
        port_map = json.loads(Path(simlab).read_text())
    except FileNotFoundError:
        raise NetworkConfigError(
            f"--simlab {simlab}: no such port map (start qnode simlab)"
        ) from None
    addresses = port_map["instruments"]
    missing = sorted(set(names) - set(addresses))
    if missing:
        raise NetworkConfigError(
            f"--simlab {simlab}: the simulated lab serves no instruments {missing}; "
            "was it started with the same network file?"
        )
    instruments = _connect(
        loaded,
        names,
        lambda inst: inst.driver.cls(
            inst.name, address=addresses[inst.name], visalib="@py", **inst.init
        ),
    )
    oracle = RemoteSimulatedLab(port_map["oracle"])
    return Network(
        loaded,
        "simulated",
        instruments,
        _stations(loaded, instruments),
        oracle,
        port_map.get("seed"),
    )
