"""CPU instructions per teleportation over Alice - Bob - Charlie, counted by valgrind's
callgrind: a figure the machine's load does not change (the same code, inputs and
interpreter count the same to a few parts in a thousand), where teleportations per
wall-clock second swing about 2x with the load of a shared machine.

Only the shot loop is counted: the run calls it through ``operator.call`` and callgrind
collects only inside that C function (``--toggle-collect=_operator_call``), so imports,
start-up and the warm-up shots are left out. ``PYTHONHASHSEED`` is fixed, as the order of
hashed sets would otherwise vary the count from run to run. The objects made before the
counted shots (imports, the network) are frozen out of the garbage collector
(``gc.freeze()``): a full collection walks them all, ~40 M instructions here, once every
several thousand shots of a long run, and whether one fell inside the counted window (0.90
against 0.77 M per teleportation in batches of 16) depended on unrelated allocations, such
as a module imported or not. The young collections the shots cause are counted.

    python -m benchmarks --instructions        # with the other figures
    python -m benchmarks.cpu_instructions      # on its own (2-5 min per way under valgrind)
"""

from __future__ import annotations

import gc
import operator
import os
import re
import shutil
import subprocess
import sys

#: the ways a teleportation can run: shot programs one shot or 16 per transaction, and the
#: orchestrator driving each step (the baseline)
WAYS: dict[str, dict[str, object]] = {
    "single": {"batch": 1, "label": "shot programs"},
    "batched": {"batch": 16, "label": "batches of 16"},
    "stepwise": {"batch": 1, "stepwise": True, "label": "step by step"},
}
_COLLECTED = re.compile(rb"Collected : (\d+)")


def valgrind_available() -> bool:
    return shutil.which("valgrind") is not None


def instructions_per_teleportation(way: str, shots: int = 160, warmup: int = 64) -> float:
    """Instructions per teleportation of ``way`` (a key of ``WAYS``), counted over ``shots``
    after ``warmup`` uncounted ones. Raises RuntimeError without valgrind or on a failed run."""
    if way not in WAYS:
        raise ValueError(f"way {way!r}: expected one of {sorted(WAYS)}")
    if shots < 1 or warmup < 1:
        raise ValueError(f"shots {shots!r}, warmup {warmup!r}: expected at least 1 each")
    if not valgrind_available():
        raise RuntimeError("valgrind is not installed (Debian: apt install valgrind)")
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        "--toggle-collect=_operator_call",
        sys.executable,
        "-m",
        "benchmarks.cpu_instructions",
        "--counted-run",
        way,
        str(shots),
        str(warmup),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, env=env, timeout=1800, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"counted run of {way!r} failed (exit {done.returncode}): {tail}")
    return int(found.group(1)) / shots


def _counted_run(way: str, shots: int, warmup: int) -> None:
    """The process valgrind counts: ``warmup`` shots, then ``shots`` inside operator.call."""
    from qcodes.instrument import Instrument

    from control.backend import open_network
    from control.runs import build_orchestrator
    from sequences.attempt_loop import AttemptLoop

    from .teleport_throughput import CHAIN, teleport_shots

    options = WAYS[way]
    batch = int(options["batch"])  # type: ignore[call-overload]
    network = open_network(CHAIN, seed=1)
    try:
        orchestrator = build_orchestrator(network, AttemptLoop(alpha=0.1, max_attempts=0))
        orchestrator.shot_programs = not options.get("stepwise", False)
        orchestrator.prepare()
        teleport_shots(orchestrator, 0, warmup, batch)  # first programs, caches
        gc.collect()
        gc.freeze()  # (module docstring)
        operator.call(teleport_shots, orchestrator, warmup, shots, batch)
    finally:
        network.close()
        Instrument.close_all()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--counted-run"] and len(args) == 4 and args[1] in WAYS:
        _counted_run(args[1], int(args[2]), int(args[3]))  # (run under valgrind)
        return 0
    if args:
        print(f"unexpected arguments {args}: python -m benchmarks.cpu_instructions takes none")
        return 2
    from .__main__ import _instructions

    _instructions()
    return 0


if __name__ == "__main__":
    sys.exit(main())
