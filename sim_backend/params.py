"""Validated physical parameters of the simulated lab (pydantic v2).

Every field carries its unit in its name and a range; a bad value is rejected with an error
that names the field, the value and what was expected (see ``sim_backend.config``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Efficiency = Annotated[float, Field(gt=0.0, le=1.0)]

#: Group velocity of light in optical fibre, m/s (refractive index ~1.47).
SPEED_OF_LIGHT_IN_FIBRE_M_PER_S = 2.04e8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QubitParams(_Strict):
    """Coherence, gate and readout figures of one kind of qubit."""

    t1_s: float | None = Field(
        None, gt=0, description="energy relaxation time T1, s (null: infinite)"
    )
    t2_s: float | None = Field(None, gt=0, description="coherence time T2, s (null: infinite)")
    init_error: float = Field(0.0, ge=0, le=0.5, description="probability of initialising in |1>")
    gate_depolarizing: float = Field(
        0.0, ge=0, le=1, description="depolarising probability of each single-qubit gate"
    )
    readout_f0: float = Field(1.0, ge=0.5, le=1, description="P(read 0 | qubit in |0>)")
    readout_f1: float = Field(1.0, ge=0.5, le=1, description="P(read 1 | qubit in |1>)")

    @model_validator(mode="after")
    def _t2_within_bound(self) -> QubitParams:
        if self.t1_s is not None and self.t2_s is not None and self.t2_s > 2 * self.t1_s:
            raise ValueError(
                f"t2_s={self.t2_s} exceeds 2*t1_s={2 * self.t1_s}: "
                "expected T2 <= 2 T1 (Bloch equations)"
            )
        return self


class MemoryParams(QubitParams):
    """Memory qubits (e.g. 13C nuclear spins next to an NV centre)."""

    count: int = Field(1, ge=0, le=8, description="number of memory qubits on the node")
    dephasing_per_attempt: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="dephasing probability per entangling attempt on the node (Kalb 2017)",
    )


class ExcitationPhysics(_Strict):
    """The optical transition the excitation laser drives (hidden truth of the simulated lab)."""

    transition_wavelength_nm: float = Field(637.0, gt=100, le=5000)
    linewidth_ghz: float = Field(0.1, gt=0, le=1e3, description="transition linewidth (FWHM)")
    saturation_power_mw: float = Field(0.05, gt=0, le=1e4)
    excited_state_lifetime_ns: float = Field(
        12.0,
        gt=0,
        le=1e6,
        description="lifetime of the excited state: the emitted photon's exponential envelope "
        "(NV ZPL ~12 ns; sets the temporal overlap of photons emitted at different times)",
    )


class SpinControlPhysics(_Strict):
    """How AWG pulses through the microwave source rotate the spin."""

    resonance_frequency_hz: float = Field(2.88e9, gt=0, le=1e11)
    pi_pulse_amplitude_v: float = Field(
        0.5, gt=0, le=10, description="AWG amplitude (V) of a pi rotation at 0 dBm"
    )
    reference_power_dbm: float = Field(0.0, ge=-150, le=40)
    pi_pulse_duration_ns: float = Field(
        50.0,
        gt=0,
        le=1e6,
        description="duration of the pi pulse at pi_pulse_amplitude_v: sets the Rabi frequency",
    )
    t2_star_s: float | None = Field(
        None,
        gt=0,
        le=10,
        description="inhomogeneous dephasing time T2* of the driven spin: quasi-static detuning "
        "noise of std sqrt(2)/T2* (rad/s), drawn once per AWG play (null: none)",
    )


class NodeDrift(_Strict):
    """How a node's hidden truths drift with lab time (linear; rates per hour of lab time).

    NV optical transitions wander with strain and charge environment, a crystal's phase
    matching with the oven's calibration, the spin resonance with the magnet's field; the
    lab is recalibrated because of these.
    """

    transition_wavelength_nm_per_h: float = Field(
        0.0, ge=-0.1, le=0.1, description="drift of excitation.transition_wavelength_nm"
    )
    converter_optimal_temperature_c_per_h: float = Field(
        0.0, ge=-10, le=10, description="drift of converter.optimal_temperature_c"
    )
    spin_resonance_hz_per_h: float = Field(
        0.0, ge=-1e8, le=1e8, description="drift of spin_control.resonance_frequency_hz"
    )

    @property
    def any(self) -> bool:
        return bool(
            self.transition_wavelength_nm_per_h
            or self.converter_optimal_temperature_c_per_h
            or self.spin_resonance_hz_per_h
        )


class ConverterPhysics(_Strict):
    """Difference-frequency conversion in a PPLN waveguide (hidden truth)."""

    max_efficiency: Efficiency = 0.5
    full_conversion_pump_mw: float = Field(
        500.0, gt=0, le=1e5, description="pump power of the first efficiency maximum"
    )
    optimal_temperature_c: float = Field(55.0, ge=-50, le=250)
    temperature_bandwidth_c: float = Field(
        1.0, gt=0, le=100, description="FWHM of the phase-matching curve"
    )


class OperationTimes(_Strict):
    """How long the real-time controller takes for each operation (simulated time passes)."""

    init_us: float = Field(10.0, ge=0, le=1e6)
    single_qubit_gate_us: float = Field(0.1, ge=0, le=1e6)
    two_qubit_gate_us: float = Field(500.0, ge=0, le=1e6)
    readout_us: float = Field(10.0, ge=0, le=1e6)


class NodeParams(_Strict):
    """One node: its communication qubit, memories, gates and photon emission."""

    communication_qubit: QubitParams = QubitParams()
    memory: MemoryParams = MemoryParams(count=0)
    two_qubit_gate_depolarizing: Probability = 0.0
    collection_efficiency: Efficiency = Field(
        1.0, description="probability an emitted photon reaches the node's fibre"
    )
    frequency_conversion_efficiency: Efficiency = Field(
        1.0, description="end-to-end efficiency of the frequency converter (1 when none)"
    )
    double_excitation_probability: float = Field(
        0.0, ge=0, le=0.5, description="probability the bright state emits two photons"
    )
    operation_times: OperationTimes = OperationTimes()
    excitation: ExcitationPhysics = ExcitationPhysics()
    spin_control: SpinControlPhysics = SpinControlPhysics()
    converter: ConverterPhysics = ConverterPhysics()
    drift: NodeDrift = NodeDrift()

    def at_lab_time(self, hours: float) -> NodeParams:
        """The node's physics after ``hours`` of lab time under its drift (itself if none)."""
        d = self.drift
        if not d.any or hours == 0:
            return self
        return self.model_copy(
            update={
                "excitation": self.excitation.model_copy(
                    update={
                        "transition_wavelength_nm": self.excitation.transition_wavelength_nm
                        + d.transition_wavelength_nm_per_h * hours
                    }
                ),
                "converter": self.converter.model_copy(
                    update={
                        "optimal_temperature_c": self.converter.optimal_temperature_c
                        + d.converter_optimal_temperature_c_per_h * hours
                    }
                ),
                "spin_control": self.spin_control.model_copy(
                    update={
                        "resonance_frequency_hz": self.spin_control.resonance_frequency_hz
                        + d.spin_resonance_hz_per_h * hours
                    }
                ),
            }
        )


class DetectorParams(_Strict):
    """The two single-photon detectors behind the heralding beam splitter.

    ``efficiency`` and ``dark_count_rate_hz`` hold on the bias plateau; the simulated SNSPD
    controller scales them with its bias current (see ``sim_backend.optics``).
    """

    efficiency: Efficiency = 1.0
    dark_count_rate_hz: float = Field(0.0, ge=0, le=1e7)
    detection_window_ns: float = Field(30.0, gt=0, le=1e6)
    dead_time_ns: float = Field(0.0, ge=0, le=1e7)
    switching_current_ua: float = Field(12.0, gt=0, le=1000)
    plateau_current_ua: float = Field(9.0, gt=0, le=1000, description="bias of the plateau onset")
    pulse_amplitude_v: float = Field(0.5, gt=0, le=10, description="output pulse height")
    cable_delay_ps: tuple[
        Annotated[float, Field(ge=0, le=1e6)], Annotated[float, Field(ge=0, le=1e6)]
    ] = Field(
        (0.0, 0.0),
        description="signal delay from each detector ('+', '-') to its time-tagger input, ps "
        "(cables and electronics; hidden truth found by the channel-delay calibration)",
    )
    timing_jitter_ps: float = Field(
        0.0, ge=0, le=1e5, description="Gaussian timing jitter (standard deviation) of a click, ps"
    )


class LinkParams(_Strict):
    """A heralded-entanglement link between two nodes through a midpoint station."""

    nodes: tuple[str, str]
    scheme: Literal["single_click", "barrett_kok"] = "single_click"
    alpha: float = Field(
        0.1, gt=0, le=0.5, description="bright-state population (single-click only)"
    )
    fibre_length_km: tuple[Annotated[float, Field(ge=0, le=1000)], ...] = Field(
        (0.0, 0.0), description="fibre length from each node to the heralding station, km"
    )
    fibre_attenuation_db_per_km: float = Field(0.2, ge=0, le=50)
    visibility: Probability = Field(1.0, description="two-photon interference visibility")
    phase_noise_std_rad: float = Field(0.0, ge=0, le=10)
    phase_offset_rad: float = Field(0.0, ge=-7, le=7)
    phase_drift_rad_per_s: float = Field(
        0.0, ge=-1e3, le=1e3, description="linear drift of the interferometer phase, rad/s"
    )
    phase_random_walk_rad_per_sqrt_s: float = Field(
        0.0,
        ge=0,
        le=1e3,
        description="random walk of the interferometer phase (seeded): standard deviation "
        "grows as this times sqrt(elapsed simulated time)",
    )
    detectors: DetectorParams = DetectorParams()
    attempt_duration_us: float = Field(
        5.0, gt=0, le=1e6, description="local part of one attempt (init, pulses), us"
    )
    bk_round_separation_us: float = Field(
        1.0, gt=0, le=1e6, description="time between the two Barrett-Kok rounds, us"
    )
    wait_for_herald: bool = Field(
        True, description="each attempt waits for the station's reply before the next"
    )

    @model_validator(mode="after")
    def _check_shape(self) -> LinkParams:
        if len(self.fibre_length_km) != 2:
            raise ValueError(
                f"fibre_length_km={list(self.fibre_length_km)}: expected two lengths, one per node"
            )
        if self.nodes[0] == self.nodes[1]:
            raise ValueError(f"nodes={list(self.nodes)}: a link joins two different nodes")
        return self

    @property
    def name(self) -> str:
        return f"{self.nodes[0]}-{self.nodes[1]}"


class LabParams(_Strict):
    """The whole simulated lab: nodes and the links between them."""

    nodes: dict[str, NodeParams]
    links: list[LinkParams] = []
    classical_latency_us: float = Field(
        10.0, ge=0, le=1e6, description="processing latency added to each classical message, us"
    )
    lab_time_h: float = Field(
        0.0,
        ge=0,
        le=1e4,
        description="hours of lab time when the simulation starts: each node's drift acts over "
        "lab_time_h plus the simulated time",
    )

    @model_validator(mode="after")
    def _links_join_known_nodes(self) -> LabParams:
        seen: set[frozenset[str]] = set()
        for i, link in enumerate(self.links):
            for node in link.nodes:
                if node not in self.nodes:
                    raise ValueError(
                        f"links[{i}].nodes: unknown node {node!r}; "
                        f"expected one of {sorted(self.nodes)}"
                    )
            key = frozenset(link.nodes)
            if key in seen:
                raise ValueError(f"links[{i}]: duplicate link between {sorted(key)}")
            seen.add(key)
        for name, node in self.nodes.items():
            drifted = node.at_lab_time(self.lab_time_h)
            checks = (
                (
                    "excitation.transition_wavelength_nm",
                    drifted.excitation.transition_wavelength_nm,
                    100 < drifted.excitation.transition_wavelength_nm <= 5000,
                    "in (100, 5000]",
                ),
                (
                    "converter.optimal_temperature_c",
                    drifted.converter.optimal_temperature_c,
                    -50 <= drifted.converter.optimal_temperature_c <= 250,
                    "in [-50, 250]",
                ),
                (
                    "spin_control.resonance_frequency_hz",
                    drifted.spin_control.resonance_frequency_hz,
                    0 < drifted.spin_control.resonance_frequency_hz <= 1e11,
                    "in (0, 1e11]",
                ),
            )
            for field, value, ok, expected in checks:
                if not ok:
                    raise ValueError(
                        f"nodes.{name}.drift: at lab_time_h={self.lab_time_h} {field} drifts to "
                        f"{value:g}, expected {expected}"
                    )
        return self

    def link(self, a: str, b: str) -> LinkParams:
        for link in self.links:
            if set(link.nodes) == {a, b}:
                return link
        known = [lk.name for lk in self.links]
        raise KeyError(f"no link between {a!r} and {b!r}; configured links: {known}")


FaultKind = Literal["timeout", "drop", "garble", "truncate", "reboot", "reset", "slow"]


class FaultParams(_Strict):
    """One fault rule of a dry run (``sim_backend.instruments.faults``): which instrument,
    which kind, and when - at given message numbers, or at random per message."""

    instrument: str = Field(min_length=1, description="station name, e.g. alice_laser")
    kind: FaultKind
    probability: Probability = Field(0.0, description="chance per message to the instrument")
    at: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (), description="message numbers (1-based, per instrument) that fail"
    )
    after: int = Field(0, ge=0, description="no fault before this many messages (set-up)")
    delay_s: float = Field(30.0, gt=0, le=3600, description="how late a 'slow' reply comes")

    @model_validator(mode="after")
    def _one_trigger(self) -> FaultParams:
        if (self.probability > 0) == bool(self.at):
            raise ValueError(
                f"fault {self.kind!r} on {self.instrument!r}: give either a probability > 0 "
                "or message numbers 'at', not both and not neither"
            )
        return self


class FaultPlan(_Strict):
    """The ``faults:`` section: seeded fault injection for dry runs (simulated lab only)."""

    seed: int = Field(0, ge=0, le=2**63 - 1, description="seed of the random faults")
    faults: list[FaultParams] = []
