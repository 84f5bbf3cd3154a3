"""Which simulated instrument stands in for which driver (by the driver registry's name)."""

from __future__ import annotations

import importlib
from typing import Any

#: driver registry name -> (module, class) of its simulated counterpart
SIMULATED_MODELS: dict[str, tuple[str, str]] = {
    "santec_tsl570": ("sim_backend.instruments.sim_santec_tsl570", "SimSantecTSL570"),
    "moglabs_qrf": ("sim_backend.instruments.sim_moglabs_qrf", "SimMoglabsQRF"),
    "singlequantum_eos": ("sim_backend.instruments.sim_singlequantum_eos", "SimSingleQuantumEos"),
    "idq_id900": ("sim_backend.instruments.sim_idq_id900", "SimIdqID900"),
    "tektronix_awg5014c": (
        "sim_backend.instruments.sim_tektronix_awg5014c",
        "SimTektronixAWG5014C",
    ),
    "thorlabs_itc4001_qfc": (
        "sim_backend.instruments.sim_thorlabs_itc4001_qfc",
        "SimThorlabsITC4001QFC",
    ),
    "rs_sgs100a": ("sim_backend.instruments.sim_rs_sgs100a", "SimRsSGS100A"),
    "qnode_rtc": ("sim_backend.instruments.sim_qnode_rtc", "SimRealTimeController"),
    "newfocus_tlb6700": (
        "sim_backend.instruments.sim_newfocus_tlb6700",
        "SimNewFocusTLB6700",
    ),
}


def simulated_model(driver_name: str) -> type[Any]:
    """The simulated instrument class for a registered driver name."""
    try:
        module, cls = SIMULATED_MODELS[driver_name]
    except KeyError:
        raise LookupError(
            f"no simulated instrument for driver {driver_name!r}; "
            f"simulated: {sorted(SIMULATED_MODELS)}"
        ) from None
    return getattr(importlib.import_module(module), cls)
