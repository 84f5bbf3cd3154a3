"""A run's answer to faults that the drivers could not absorb, and resuming a stored run.

* **A shot that meets a fault is abandoned, not the run.** The drivers retry what is safe to
  repeat (``drivers.resilience``); a fault they give up on, or one on a command that must
  not be repeated (a gate, a qubit readout, starting the attempt loop), ends the shot:
  :func:`attempt_shot` releases every pair the nodes hold (their qubits are
  re-initialised) and runs the shot again, at most ``SHOT_ATTEMPTS`` times. A shot that
  still fails ends the run cleanly with the last fault, which names the instrument, the
  command and the fault. Only the transient faults (``drivers.errors.TRANSIENT_ERRORS``)
  are treated so: a refused value or command ends the run at once.
* **Resuming** (:func:`plan_resume`): a stored run that did not finish (Ctrl-C, an abort, a
  killed process) continues under its own run id with the same network, backend and attempt
  loop - a mismatch is refused, naming what differs - and appends shots, numbered on from
  the last stored one, until the requested count. The simulated lab of the continuation is
  seeded from the run's seed and the number of shots already stored
  (:func:`continuation_seed`), so a resumed run is reproducible too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from drivers.errors import TRANSIENT_ERRORS, InstrumentError

from .network_config import load_network
from .stored_runs import DEFAULT_DB_PATH, load_run, open_database, resume_info

#: How often one shot is tried before a transient fault ends the run.
SHOT_ATTEMPTS = 5
T = TypeVar("T")


@dataclass
class ShotFaults:
    """Shots abandoned because of a fault (and why), for the run's summary."""

    abandoned: int = 0
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"abandoned_shots": self.abandoned, "reasons": self.reasons[:10]}


def abandon_shot(nodes: Mapping[str, Any]) -> None:
    """Forget every pair of every node and re-initialise its qubit (a fresh start for the
    next shot). Nodes served by other processes are not handled here (their faults reach
    the run as RPC errors and end it)."""
    for node in nodes.values():
        for pair_id in list(getattr(node, "pairs", {})):
            node.release(pair_id)


def attempt_shot(
    make_shot: Callable[[], T],
    nodes: Mapping[str, Any],
    faults: ShotFaults,
    attempts: int = SHOT_ATTEMPTS,
) -> T:
    """``make_shot()``, abandoned and tried again after a transient instrument fault (at
    most ``attempts`` tries); the last fault is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return make_shot()
        except TRANSIENT_ERRORS as exc:
            faults.abandoned += 1
            faults.reasons.append(str(exc))
            if attempt == attempts or not all(hasattr(n, "pairs") for n in nodes.values()):
                raise
            abandon_shot(nodes)
    raise AssertionError("unreachable")


class ResumeMismatchError(ValueError):
    """The run to resume was taken with another network, backend or protocol setting."""


@dataclass(frozen=True)
class ResumePlan:
    """Where a resumed run continues: its id, the next shot number, how many remain."""

    run_id: int
    db_path: Path
    start_shot: int
    stored: int
    requested: int
    seed: int | None
    continuation_seed: int | None

    @property
    def remaining(self) -> int:
        return max(self.requested - self.stored, 0)


def continuation_seed(seed: int, shots_stored: int) -> int:
    """The simulated lab's seed for a run resumed after ``shots_stored`` shots: derived from
    the run's seed and that count (``numpy.random.SeedSequence``), reproducible."""
    if shots_stored == 0:
        return seed
    state = np.random.SeedSequence([seed, shots_stored]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def plan_resume(
    run_id: int,
    db_path: str | Path | None,
    *,
    run_name: str,
    network_path: str | Path,
    backend: str | None,
    attempt_loop: Mapping[str, Any],
    shots: int | None,
    seed: int | None,
) -> ResumePlan:
    """Check that run ``run_id`` can be resumed by this command; where it continues.
    Raises ``ResumeMismatchError`` naming the first difference, ``ValueError`` if the run
    is finished or missing."""
    path = Path(db_path if db_path is not None else DEFAULT_DB_PATH)
    try:
        info = resume_info(run_id, path)
    except FileNotFoundError as exc:
        raise ValueError(f"--resume {run_id}: {exc}") from None
    name = _run_name(run_id, path)
    if name != run_name:
        raise ResumeMismatchError(
            f"--resume {run_id}: run {run_id} is a {name!r} run, not {run_name!r}; resume it "
            f"with qnode {name} --resume {run_id}"
        )
    requested = info.requested_shots
    if info.completed:
        raise ValueError(
            f"--resume {run_id}: run {run_id} is completed ({info.shots} of {requested} "
            "shots); nothing to resume"
        )
    meta = info.metadata
    loaded = load_network(network_path)
    current = {
        "config": _as_json(loaded.config),
        "backend": backend or loaded.config.backend,
        "attempt_loop": _as_json(dict(attempt_loop)),
    }
    for key, value in current.items():
        difference = _first_difference(meta.get(key), value, key)
        if difference is not None:
            raise ResumeMismatchError(
                f"--resume {run_id}: this command differs from the stored run: {difference}"
            )
    if shots is not None and requested is not None and shots != requested:
        raise ResumeMismatchError(
            f"--resume {run_id}: run {run_id} requested {requested} shots, this command "
            f"{shots}; leave --shots out to continue to {requested}"
        )
    stored_seed = meta.get("seed")
    if seed is not None and stored_seed is not None and seed != stored_seed:
        raise ResumeMismatchError(
            f"--resume {run_id}: run {run_id} was taken with seed {stored_seed}, this "
            f"command gives --seed {seed}; leave --seed out to continue its seed stream"
        )
    start = 0 if info.last_shot is None else info.last_shot + 1
    return ResumePlan(
        run_id=run_id,
        db_path=path,
        start_shot=start,
        stored=info.shots,
        requested=requested if requested is not None else info.shots,
        seed=stored_seed,
        continuation_seed=(
            None if stored_seed is None else continuation_seed(stored_seed, info.shots)
        ),
    )


def _run_name(run_id: int, path: Path) -> str:
    conn = open_database(path, create=False, writer=False)
    try:
        return str(load_run(conn, run_id).name)
    finally:
        conn.close()


def _as_json(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.loads(json.dumps(value, default=str))


def _first_difference(stored: Any, current: Any, where: str) -> str | None:
    """The dotted path of the first difference, with both values; None if equal."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current), key=str):
            found = _first_difference(stored.get(key), current.get(key), f"{where}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(stored, list) and isinstance(current, list) and len(stored) == len(current):
        for i, (a, b) in enumerate(zip(stored, current, strict=True)):
            found = _first_difference(a, b, f"{where}.{i}")
            if found is not None:
                return found
        return None
    if stored != current:
        return f"{where} was {stored!r} in the stored run, is {current!r} now"
    return None


def fault_summary(network: Any, shot_faults: ShotFaults) -> dict[str, Any] | None:
    """Faults injected and handled during a run (None when there were none)."""
    report = network.fault_report()
    if not (report["injected"] or report["handled"] or shot_faults.abandoned):
        return None
    return {**report, **shot_faults.as_dict()}


def describe_fault(exc: InstrumentError) -> str:
    """How a run reports the fault that ended it."""
    return f"{type(exc).__name__} ({exc.fault}): {exc}"


__all__ = [
    "SHOT_ATTEMPTS",
    "ResumeMismatchError",
    "ResumePlan",
    "ShotFaults",
    "abandon_shot",
    "attempt_shot",
    "continuation_seed",
    "describe_fault",
    "fault_summary",
    "plan_resume",
]
