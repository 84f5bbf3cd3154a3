"""Experiment runs: open a network, run a protocol shot by shot, store every shot as it
completes, and summarise. Used by the `qnode` command line and from notebooks.

One module per protocol (``run_entangle``: entanglement and swapping, ``run_chsh``,
``run_teleport``) over what they share (``run_setup``); this module gathers their public
functions in one place."""

from __future__ import annotations

from .run_chsh import CHSH_COLUMNS, chsh_summary, iter_chsh, run_chsh
from .run_entangle import (
    VERIFICATION_BASES,
    EntanglementShot,
    iter_entanglement,
    iter_swapped_pairs,
    run_entangle,
)
from .run_setup import (
    build_orchestrator,
    calibrated_alpha,
    calibration_versions,
    chain_of,
    link_of,
)
from .run_teleport import TELEPORT_COLUMNS, iter_teleportations, run_teleport, teleport_summary

__all__ = [
    "CHSH_COLUMNS",
    "TELEPORT_COLUMNS",
    "VERIFICATION_BASES",
    "EntanglementShot",
    "build_orchestrator",
    "calibrated_alpha",
    "calibration_versions",
    "chain_of",
    "chsh_summary",
    "iter_chsh",
    "iter_entanglement",
    "iter_swapped_pairs",
    "iter_teleportations",
    "link_of",
    "run_chsh",
    "run_entangle",
    "run_teleport",
    "teleport_summary",
]
