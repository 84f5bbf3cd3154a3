"""Fixtures for the driver tests: simulated instruments that are always closed again.

pyvisa-sim keeps device state per resource manager; every instrument is closed in
teardown (and ``Instrument.close_all()`` runs after every test) so no state leaks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from qcodes.instrument import Instrument

from drivers.base import QNodeVisaInstrument
from drivers.registry import lookup

GOOD_ADDRESS = "GPIB::1::INSTR"
IMPOSTOR_ADDRESS = "GPIB::9::INSTR"


@pytest.fixture(autouse=True)
def _close_all_instruments() -> Iterator[None]:
    yield
    Instrument.close_all()


@pytest.fixture
def make_sim() -> Iterator[Callable[..., QNodeVisaInstrument]]:
    """``make_sim("santec_tsl570")`` -> a simulated, connected driver instance."""
    created: list[QNodeVisaInstrument] = []

    def factory(driver: str, name: str | None = None, **kwargs: object) -> QNodeVisaInstrument:
        inst = lookup(driver).create(
            name or f"sim_{driver}", address=GOOD_ADDRESS, simulated=True, **kwargs
        )
        inst.resilience.sleep = lambda seconds: None  # retries back off without sleeping
        created.append(inst)
        return inst

    yield factory
    for inst in created:
        if Instrument.is_valid(inst):
            inst.close()
