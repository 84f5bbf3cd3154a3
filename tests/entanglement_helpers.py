"""A two-node network on a clean simulated lab, written next to a test: the stations of
lab_configs/ (the same drivers and simulated instruments), physics chosen so that closed
forms hold (no dark counts, no double excitation, ideal qubits), with fields to change."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CONFIGS = Path(__file__).parents[1] / "lab_configs"

CLEAN_NODE: dict[str, Any] = {
    "communication_qubit": {"t1_s": None, "t2_s": None},
    "memory": {"count": 1},
    "collection_efficiency": 0.3,
    "double_excitation_probability": 0.0,
}
CLEAN_LINK: dict[str, Any] = {
    "nodes": ["alice", "bob"],
    # the config's scheme is the engine's own default: on the instruments the AWG program
    # decides, so a Barrett-Kok program runs Barrett-Kok physics on this link too
    "scheme": "single_click",
    "alpha": 0.1,
    "fibre_length_km": [0.01, 0.01],
    "fibre_attenuation_db_per_km": 0.5,
    "visibility": 0.9,
    "phase_noise_std_rad": 0.6,  # large: single click suffers, Barrett-Kok does not
    "attempt_duration_us": 3.8,
    "detectors": {
        "efficiency": 0.9,
        "dark_count_rate_hz": 0.0,
        "detection_window_ns": 25.0,
        "dead_time_ns": 50.0,
    },
}


def clean_network(
    directory: Path, link: dict[str, Any] | None = None, *, chain: bool = False
) -> Path:
    """Write a physics file and a network file into ``directory``; return the network file.
    ``chain``: the three-node chain Alice - Bob - Charlie (Bob holds two memories)."""
    link_params = copy.deepcopy(CLEAN_LINK)
    for key, value in (link or {}).items():
        if isinstance(value, dict):
            link_params[key] = {**link_params[key], **value}
        else:
            link_params[key] = value
    nodes = {"alice": CLEAN_NODE, "bob": CLEAN_NODE}
    links = [link_params]
    template = "two_node.network.yaml"
    if chain:
        nodes = {**nodes, "charlie": CLEAN_NODE, "bob": {**CLEAN_NODE, "memory": {"count": 2}}}
        links = [link_params, {**link_params, "nodes": ["bob", "charlie"]}]
        template = "three_node_chain.network.yaml"
    physics = {
        "name": "clean",
        "simulated_lab": {"classical_latency_us": 1.0, "nodes": nodes, "links": links},
    }
    physics_path = directory / "clean_lab.yaml"
    physics_path.write_text(yaml.safe_dump(physics))
    network = yaml.safe_load((CONFIGS / template).read_text())
    network["simulated_lab"] = str(physics_path)
    for section in ("nodes", "heralding_stations"):
        for entry in network[section].values():
            entry["station"] = str(CONFIGS / entry["station"])
    network_path = directory / "clean.network.yaml"
    network_path.write_text(yaml.safe_dump(network))
    return network_path
