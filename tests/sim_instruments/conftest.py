"""Fixtures shared by the simulated-instrument tests: instruments always closed, lab hooks
that record every call, and a driver connected to a simulated instrument over the
in-process VISA library."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from unittest.mock import MagicMock

import pytest
import pyvisa
from qcodes.instrument import Instrument

from sim_backend.instruments.protocols import NullLabHooks
from sim_backend.instruments.visa_library import SimulatedVisaLibrary


@pytest.fixture(autouse=True)
def _close_all_instruments() -> Iterator[None]:
    yield
    Instrument.close_all()


@pytest.fixture
def hooks() -> MagicMock:
    """Lab hooks of an empty lab that record how the simulated instrument used them."""
    return MagicMock(wraps=NullLabHooks())


@pytest.fixture
def connect() -> Iterator[Callable[..., Any]]:
    """``connect(DriverClass, sim, address, name, **kwargs)``: the real driver talking to
    ``sim`` through a fresh in-process VISA library; closed again after the test."""
    opened: list[tuple[Any, pyvisa.ResourceManager]] = []

    def factory(driver_cls: type, sim: Any, address: str, name: str, **kwargs: Any) -> Any:
        library = SimulatedVisaLibrary()
        library.attach(address, sim)
        rm = pyvisa.ResourceManager(library)
        driver = driver_cls(name, resource=rm.open_resource(address), **kwargs)
        opened.append((driver, rm))
        return driver

    yield factory
    for driver, rm in opened:
        if Instrument.is_valid(driver):
            driver.close()
        rm.close()
