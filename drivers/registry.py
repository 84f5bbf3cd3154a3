"""Driver registry: the names a station config uses, mapped to driver class and HAL role.

>>> entry = lookup("santec_tsl570")
>>> entry.cls.__name__, entry.role.__name__
('SantecTSL570', 'Laser')
>>> laser = entry.create("laser_a", address="GPIB::1::INSTR", simulated=True)  # doctest: +SKIP

An unknown name raises :class:`UnknownDriverError`, which lists the known names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.base import QNodeVisaInstrument
from drivers.hal import (
    AWG,
    FrequencyConverter,
    Laser,
    MicrowaveSource,
    OpticalSwitch,
    PhotonDetector,
    QubitDevice,
    TimeTagger,
)
from drivers.idq_id900 import IDQuantiqueID900
from drivers.moglabs_qrf import MOGLabsQRF
from drivers.newfocus_tlb6700 import NewFocusTLB6700
from drivers.qnode_rtc import RealTimeQubitController
from drivers.rs_sgs100a import RohdeSchwarzSGS100A
from drivers.santec_tsl570 import SantecTSL570
from drivers.singlequantum_eos import SingleQuantumEos
from drivers.tektronix_awg5014c import TektronixAWG5014C
from drivers.thorlabs_itc4001_qfc import ThorlabsITC4001FrequencyConverter


class UnknownDriverError(LookupError):
    """A station config names a driver that does not exist."""


@dataclass(frozen=True)
class DriverEntry:
    """One registered driver."""

    name: str
    cls: type[QNodeVisaInstrument]
    role: type
    sim_file: str
    description: str

    def create(
        self, instrument_name: str, address: str, simulated: bool = False, **kwargs: Any
    ) -> QNodeVisaInstrument:
        """Instantiate the driver; ``simulated`` loads its pyvisa-sim YAML."""
        if simulated:
            kwargs["pyvisa_sim_file"] = self.sim_file
        return self.cls(instrument_name, address=address, **kwargs)


def _entry(name: str, cls: type[QNodeVisaInstrument], role: type, description: str) -> DriverEntry:
    return DriverEntry(name, cls, role, f"drivers.sims:{name}.yaml", description)


DRIVERS: dict[str, DriverEntry] = {
    e.name: e
    for e in (
        _entry("santec_tsl570", SantecTSL570, Laser, "Santec TSL-570 tunable laser"),
        _entry("moglabs_qrf", MOGLabsQRF, OpticalSwitch, "MOGLabs QRF 4-channel AOM driver"),
        _entry(
            "singlequantum_eos",
            SingleQuantumEos,
            PhotonDetector,
            "Single Quantum Eos SNSPD driver (SCPI rendering)",
        ),
        _entry("idq_id900", IDQuantiqueID900, TimeTagger, "ID Quantique ID900 Time Controller"),
        _entry("tektronix_awg5014c", TektronixAWG5014C, AWG, "Tektronix AWG5014C"),
        _entry(
            "thorlabs_itc4001_qfc",
            ThorlabsITC4001FrequencyConverter,
            FrequencyConverter,
            "PPLN frequency converter on a Thorlabs ITC4001 (pump + crystal TEC)",
        ),
        _entry("rs_sgs100a", RohdeSchwarzSGS100A, MicrowaveSource, "R&S SGS100A MW source"),
        _entry(
            "qnode_rtc",
            RealTimeQubitController,
            QubitDevice,
            "real-time qubit controller (qnode RTC protocol v1)",
        ),
        _entry(
            "newfocus_tlb6700",
            NewFocusTLB6700,
            Laser,
            "New Focus TLB-6700 Velocity tunable laser (TLB-6704 head, 637 nm)",
        ),
    )
}


def known_drivers() -> list[str]:
    """Sorted names of all registered drivers."""
    return sorted(DRIVERS)


def lookup(name: str) -> DriverEntry:
    """The entry for ``name``; :class:`UnknownDriverError` lists the known names if absent."""
    try:
        return DRIVERS[name]
    except KeyError:
        raise UnknownDriverError(
            f"unknown instrument driver {name!r}; known drivers: {', '.join(known_drivers())}"
        ) from None


def drivers_for_role(role: type) -> list[str]:
    """Names of the drivers that fill ``role`` (a :mod:`drivers.hal` protocol)."""
    return sorted(e.name for e in DRIVERS.values() if e.role is role)
