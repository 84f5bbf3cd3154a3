"""Lab config files: the shipped ones load; bad ones are rejected naming file, field, value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim_backend.config import ConfigError, load_lab_file, parse_lab_file

CONFIGS = sorted((Path(__file__).parents[2] / "lab_configs").glob("*_link.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    lab_file = load_lab_file(path)
    assert lab_file.simulated_lab.links, "every shipped link config has a link"


def _base() -> dict:
    return yaml.safe_load((CONFIGS[0]).read_text())


def _error(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_lab_file(data, "test.yaml")
    return str(info.value)


def test_out_of_range_value_names_file_field_and_value() -> None:
    data = _base()
    data["simulated_lab"]["links"][0]["visibility"] = 1.3
    message = _error(data)
    assert "test.yaml: simulated_lab.links.0.visibility" in message
    assert "less than or equal to 1" in message
    assert "1.3" in message


def test_unknown_field_is_rejected() -> None:
    data = _base()
    data["simulated_lab"]["links"][0]["visibilty"] = 0.9  # typo
    assert "simulated_lab.links.0.visibilty: Extra inputs are not permitted" in _error(data)


def test_link_to_unknown_node_is_rejected() -> None:
    data = _base()
    data["simulated_lab"]["links"][0]["nodes"] = ["alice", "carol"]
    message = _error(data)
    assert "unknown node 'carol'" in message and "alice" in message


def test_t2_longer_than_twice_t1_is_rejected() -> None:
    data = _base()
    data["simulated_lab"]["nodes"]["alice"]["communication_qubit"] = {"t1_s": 1.0, "t2_s": 3.0}
    message = _error(data)
    assert "simulated_lab.nodes.alice.communication_qubit" in message
    assert "t2_s=3.0 exceeds 2*t1_s=2.0" in message


def test_duplicate_link_is_rejected() -> None:
    data = _base()
    link = dict(data["simulated_lab"]["links"][0])
    link["nodes"] = list(reversed(link["nodes"]))
    data["simulated_lab"]["links"].append(link)
    assert "duplicate link" in _error(data)


def test_wrong_type_names_the_value() -> None:
    data = _base()
    data["simulated_lab"]["links"][0]["alpha"] = "lots"
    message = _error(data)
    assert "simulated_lab.links.0.alpha" in message and "'lots'" in message


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_lab_file(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("simulated_lab: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_lab_file(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_lab_file(listing)
