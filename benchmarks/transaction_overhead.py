"""Per-transaction overhead of an instrument driver: figures only, nothing printed.

``ask_vs_raw(n)`` times, on the simulated three-node chain, a driver ``inst.ask('*OPC?')``
next to the raw pyvisa handle ``inst.visa_handle.query('*OPC?')`` against the same simulated
instrument, alternating blocks of calls so the ratio is not at the mercy of a shared
machine's load changing between two runs; also a driver ``write`` (with its error-queue
check) and the simulated wire alone (the library's ``write`` + ``read``, SCPI dispatch
included). The ratio ask / raw is the driver's own overhead (goal: <= 1.5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qcodes.instrument import Instrument

from control.backend import open_network

CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"


def _block_us(call: Callable[[], Any], n: int) -> float:
    """Mean time of one call over a block of ``n`` calls, microseconds."""
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1e6


def ask_vs_raw(
    n: int = 20_000,
    instrument: str = "alice_awg",
    query: str = "*OPC?",
    write: str = "*CLS",
    blocks: int = 10,
) -> dict[str, Any]:
    """Driver ask, raw handle query, driver write and bare simulated wire, microseconds per
    transaction (each the best of ``blocks`` alternating blocks of ``n // blocks`` calls),
    and the ratio driver ask / raw query measured in the same run."""
    network = open_network(CHAIN, seed=1)
    try:
        inst = network.instruments[instrument]
        handle = inst.visa_handle
        library, session, chunk = handle.visalib, handle.session, handle.chunk_size
        message = (query + handle.write_termination).encode(handle.encoding)

        def wire() -> None:
            library.write(session, message)
            library.read(session, chunk)

        calls: dict[str, Callable[[], Any]] = {
            "ask_us": lambda: inst.ask(query),
            "raw_us": lambda: handle.query(query),
            "write_us": lambda: inst.write(write),
            "wire_us": wire,
        }
        per_block = max(1, n // blocks)
        for call in calls.values():  # warm-up: caches filled, code paths hot
            _block_us(call, min(per_block, 500))
        best = dict.fromkeys(calls, float("inf"))
        for _ in range(blocks):
            for key, call in calls.items():
                best[key] = min(best[key], _block_us(call, per_block))
        return {
            "instrument": instrument,
            "n": per_block * blocks,
            **best,
            "ask_over_raw": best["ask_us"] / best["raw_us"],
        }
    finally:
        network.close()
        Instrument.close_all()


if __name__ == "__main__":
    for name in ("alice_rtc", "alice_awg"):
        print(ask_vs_raw(instrument=name))
