"""A teleportation batch's records read off its replies' columns (``ReplyTable``) are those
read off each shot's ``ProgramResult``."""

from __future__ import annotations

from pathlib import Path

from qcodes.instrument import Instrument

from control import chain_shots
from control.backend import open_network
from control.node import cardinal_states
from control.runs import build_orchestrator
from sequences.attempt_loop import AttemptLoop

CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"


def test_records_read_off_the_columns_are_those_of_each_shot_s_results(monkeypatch) -> None:
    """A batch's records read off the replies' columns, against the same batch on the same
    seed with each shot's ``ProgramResult`` read (the columns refused)."""
    states = cardinal_states()
    shots = [(i, states[i % 6]) for i in range(20)]
    got = []
    for tables in (True, False):
        if not tables:
            monkeypatch.setattr(chain_shots, "_table_records", lambda *args: None)
        network = open_network(CHAIN, seed=11)
        try:
            orchestrator = build_orchestrator(network, AttemptLoop(alpha=0.1, max_attempts=0))
            orchestrator.prepare()
            got.append(orchestrator.teleport_batch("alice", "bob", "charlie", shots))
        finally:
            network.close()
            Instrument.close_all()
    assert got[0] == got[1] and len(got[0]) == 20
