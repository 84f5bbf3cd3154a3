"""The plan of an unattended calibration: which steps, of which kind, in which order.

The plan is data: a list of :class:`Step` with ``depends_on`` names. Per heralding station
serving a selected node: its detectors (``<station>.detectors``); when both nodes of its link
are selected, also its channel delays (``<station>.channel_delays``, after the detectors and
both nodes' lasers and converters: the coincidences need both nodes' photons), the two-photon
visibility (``<station>.hom_visibility``, after the channel delays) and the interferometer
phase (``<station>.interferometer_phase``, after both nodes' optics: the heralds it uses are
decided by the station, whatever the tagger's delays). Per node: its laser resonance (after
the detectors of its stations), its converter's phase matching (after its laser) and its
qubit readout (independent).

The network file's ``calibration:`` section can switch the channel-delay and HOM steps off
(``channel_delays: {enabled: false}``, ``hom: {enabled: false}``): :func:`calibration_plan`
then names them, with the reason, as *not planned* (the summary lists them; they are neither
run nor failed). The interferometer phase does not depend on them.

A step kind is a name; ``control.calibrate_runner.ROUTINES`` maps it to the routine that runs
it and ``control.calibrate_report.PLOTS`` to its plot. A new kind adds a row to each table and
its steps to :func:`plan_calibrations`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .network_config import NetworkConfig

#: Store prefix of each station-level kind (``<station>.<prefix>.<quantity>``).
STATION_PREFIX = {
    "detectors": "detectors",
    "channel_delays": "channel_delays",
    "hom_visibility": "hom",
    "interferometer_phase": "interferometer",
}


@dataclass(frozen=True)
class CalibrationSettings:
    """Scan parameters of the unattended run (thresholds are in the network file's
    ``calibration:`` section). The defaults work on the shipped configs (photon collection
    1.5e-3 per excitation); a brighter lab can use fewer attempts."""

    #: nominal operating point, used when the store has no passed value yet
    nominal_wavelength_nm: float = 637.0
    nominal_converter_temperature_c: float = 55.0
    converter_pump_mw: float = 500.0
    #: laser power during the optical steps: saturates and broadens the line (~2 pm FWHM)
    #: so a 1 pm grid resolves it
    laser_power_mw: float = 10.0
    laser_span_nm: float = 0.016
    laser_step_nm: float = 0.001
    laser_attempts_per_point: int = 2_000_000
    converter_span_c: float = 4.0
    converter_step_c: float = 0.1
    converter_attempts_per_point: int = 2_000_000
    detector_bias_ua: float = 9.0
    detector_dark_time_s: float = 100.0
    detector_attempts: int = 20_000_000
    readout_shots: int = 2000
    #: single clicks of one node folded on the attempt period (~1e-4 per attempt and
    #: channel on the shipped lab: ~400 clicks per channel, centres to ~2 ps)
    channel_delay_attempts: int = 4_000_000
    #: two-photon coincidences are rare (both nodes' photons detected, ~3e-8 per attempt on
    #: the shipped lab): the network file's ``calibration.hom`` says whether the step runs
    hom_offsets_ns: tuple[float, ...] = (-100.0, -24.0, -12.0, -4.0, 0.0, 4.0, 12.0, 24.0, 100.0)
    hom_attempts_per_point: int = 20_000_000
    phase_points: int = 8
    phase_pairs_per_point: int = 100
    phase_alpha: float = 0.1
    #: how often a failed step is tried again
    retries: int = 1
    #: spin control (Rabi, Ramsey): nominal MW carrier and pi amplitude until calibrated
    nominal_microwave_hz: float = 2.88e9
    nominal_pi_pulse_amplitude_v: float = 0.5
    microwave_power_dbm: float = 0.0
    spin_pulse_ns: float = 50.0
    spin_awg_amplitude_vpp: float = 4.5
    rabi_max_amplitude_v: float = 1.25
    rabi_points: int = 26
    rabi_shots_per_point: int = 100
    ramsey_detuning_hz: float = 2.0e6
    ramsey_max_wait_us: float = 8.0
    ramsey_step_us: float = 0.1
    ramsey_shots_per_point: int = 100
    #: the single-click trade-off: alphas swept, pairs per alpha, target fidelity
    alpha_values: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    alpha_pairs_per_point: int = 1000
    #: readout-corrected fidelity the chosen alpha must give (the shipped NV lab reaches
    #: about 0.8 at small alpha)
    target_fidelity: float = 0.75

    def __post_init__(self) -> None:
        from .calibrate_qubit import check_qubit_settings

        check_qubit_settings(self)


@dataclass(frozen=True)
class Step:
    """One calibration step of the plan.

    ``owner`` is the node (or, for station-level steps, the heralding station) calibrated;
    ``station`` and ``link`` say which heralding station probes an optical step;
    ``store_prefix`` is where its quantities go in the store (``<prefix>.<quantity>``).
    """

    name: str
    kind: str
    owner: str
    store_prefix: str
    depends_on: tuple[str, ...] = ()
    station: str | None = None
    link: tuple[str, str] | None = None


def _station_step(
    kind: str, station: str, link: tuple[str, str], depends_on: tuple[str, ...] = ()
) -> Step:
    return Step(
        name=f"{station}.{kind}",
        kind=kind,
        owner=station,
        store_prefix=f"{station}.{STATION_PREFIX[kind]}",
        depends_on=depends_on,
        station=station,
        link=link,
    )


@dataclass(frozen=True)
class Plan:
    """The ordered steps, and the steps the network file switched off (name -> why)."""

    steps: list[Step]
    not_planned: dict[str, str]


def plan_calibrations(config: NetworkConfig, nodes: Iterable[str] | None = None) -> list[Step]:
    """The steps calibrating ``nodes`` (default: all) of a network, in dependency order."""
    return calibration_plan(config, nodes).steps


def _switched_off(config: NetworkConfig, kind: str) -> str | None:
    """Why the network file's ``calibration:`` section switches a link step off, or None."""
    field = {"channel_delays": "channel_delays", "hom_visibility": "hom"}[kind]
    entry = getattr(config.calibration, field)
    if entry.enabled:
        return None
    why = f"calibration.{field}.enabled is false in the network file"
    return f"{why}: {entry.note}" if entry.note else why


def calibration_plan(config: NetworkConfig, nodes: Iterable[str] | None = None) -> Plan:
    """The steps calibrating ``nodes`` (default: all) of a network, in dependency order, and
    the link steps the network file's ``calibration:`` section switched off."""
    selected = list(config.nodes) if nodes is None else list(dict.fromkeys(nodes))
    unknown = [n for n in selected if n not in config.nodes]
    if unknown:
        raise KeyError(f"no node {unknown} in network {config.name!r}; nodes: {list(config.nodes)}")
    steps: list[Step] = []
    not_planned: dict[str, str] = {}
    stations_of: dict[str, list[str]] = {n: [] for n in selected}
    both_lit: list[tuple[str, tuple[str, str]]] = []
    for station, hs in config.heralding_stations.items():
        lit = [n for n in hs.link if n in selected]
        if not lit:
            continue
        for n in lit:
            stations_of[n].append(station)
        link = (lit[0], next(n for n in hs.link if n != lit[0]))
        steps.append(_station_step("detectors", station, link))
        if len(lit) == 2:
            both_lit.append((station, (hs.link[0], hs.link[1])))
    optical_of: dict[str, list[str]] = {}  # node -> its optical steps (laser, converter)
    for node in selected:
        roles = config.nodes[node].instruments
        stations = stations_of[node]
        optical = stations and {"laser", "optical_switch", "awg", "microwave"} <= set(roles)
        if optical:
            hs = config.heralding_stations[stations[0]]
            link = (node, next(n for n in hs.link if n != node))
            laser = Step(
                name=f"{node}.laser_resonance",
                kind="laser_resonance",
                owner=node,
                store_prefix=f"{node}.laser",
                depends_on=tuple(f"{s}.detectors" for s in stations),
                station=stations[0],
                link=link,
            )
            steps.append(laser)
            optical_of[node] = [laser.name]
            if "frequency_converter" in roles:
                steps.append(
                    Step(
                        name=f"{node}.phase_matching",
                        kind="phase_matching",
                        owner=node,
                        store_prefix=f"{node}.frequency_converter",
                        depends_on=(laser.name,),
                        station=stations[0],
                        link=link,
                    )
                )
                optical_of[node].append(steps[-1].name)
        if "qubit_controller" in roles:
            steps.append(
                Step(
                    name=f"{node}.readout",
                    kind="readout",
                    owner=node,
                    store_prefix=f"{node}.qubit_controller",
                )
            )
        if {"qubit_controller", "awg", "microwave", "laser"} <= set(roles):
            steps.append(Step(f"{node}.rabi", "rabi", node, f"{node}.spin"))
            steps.append(Step(f"{node}.ramsey", "ramsey", node, f"{node}.spin", (f"{node}.rabi",)))
    for station, link in both_lit:
        if not all(n in optical_of for n in link):
            continue
        optics = tuple(name for n in link for name in optical_of[n])
        detectors = (f"{station}.detectors",)
        delays: tuple[str, ...] = ()
        off = _switched_off(config, "channel_delays")
        if off is None:
            steps.append(_station_step("channel_delays", station, link, detectors + optics))
            delays = (f"{station}.channel_delays",)
        else:
            not_planned[f"{station}.channel_delays"] = off
        off = _switched_off(config, "hom_visibility")
        if off is None:  # after the delays when they run (else with the delays in force)
            steps.append(_station_step("hom_visibility", station, link, delays + optics))
        else:
            not_planned[f"{station}.hom_visibility"] = off
        roles = [config.nodes[n].instruments for n in link]
        if all("qubit_controller" in r for r in roles):
            steps.append(_station_step("interferometer_phase", station, link, optics))
    steps.extend(_alpha_steps(config, selected, {s.name for s in steps}))
    return Plan(order_steps(steps), not_planned)


def _alpha_steps(config: NetworkConfig, selected: list[str], planned: set[str]) -> list[Step]:
    """One alpha trade-off per single-click link whose two nodes are both selected; it
    needs both nodes' lasers (and converters), spin (Ramsey, after Rabi) and readout, and
    the link's interferometer phase when that is planned."""
    steps = []
    for station, hs in config.heralding_stations.items():
        a, b = hs.link
        if a not in selected or b not in selected:
            continue
        kinds = ("laser_resonance", "phase_matching", "ramsey", "readout")
        deps = tuple(f"{n}.{k}" for n in (a, b) for k in kinds if f"{n}.{k}" in planned)
        if not all(f"{n}.laser_resonance" in deps for n in (a, b)):
            continue  # no optical calibration of the link: nothing to trade off
        if f"{station}.interferometer_phase" in planned:
            deps += (f"{station}.interferometer_phase",)
        steps.append(Step(f"{a}-{b}.alpha", "alpha", f"{a}-{b}", f"{a}-{b}", deps, station, (a, b)))
    return steps


def order_steps(steps: Sequence[Step]) -> list[Step]:
    """Topological order of ``steps`` (stable: the given order where dependencies allow).
    Raises ValueError on an unknown dependency or a cycle."""
    names = {s.name for s in steps}
    for s in steps:
        missing = [d for d in s.depends_on if d not in names]
        if missing:
            raise ValueError(f"step {s.name!r} depends on unknown steps {missing}")
    done: set[str] = set()
    ordered: list[Step] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if set(s.depends_on) <= done]
        if not ready:
            raise ValueError(f"dependency cycle among steps {[s.name for s in pending]}")
        step = ready[0]
        ordered.append(step)
        done.add(step.name)
        pending.remove(step)
    return ordered
