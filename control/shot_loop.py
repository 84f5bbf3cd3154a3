"""The shot loop every run shares: shots run (a shot that meets a transient fault is
abandoned and run again), stored as each completes, and the run closed - how it ended, the
faults it met, the stored run finished or marked interrupted, every instrument safe - plus
opening a new stored run or resuming one (``control.recovery``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.errors import InstrumentError
from sequences.attempt_loop import AnyLoop

from .backend import Network
from .node import NodeError
from .orchestrator import OrchestrationError, Orchestrator
from .recovery import ResumePlan, ShotFaults, attempt_shot, describe_fault, fault_summary
from .rpc import RpcError
from .storage import Durability, ShotStore

#: Shots between two checks that no idle instrument rebooted (``check_health``).
HEALTH_EVERY = 100


class CutoffTally:
    """Counts the tries a cut-off ended (the orchestrator's ``cutoff`` and ``discard``
    events: an attempt loop out of attempts or time, a stored pair too old), and tells
    ``notify`` the count at most every ``every_s`` of wall time: a run whose cut-off is
    too short for the link retries silently for minutes otherwise."""

    KINDS = frozenset({"cutoff", "discard"})

    def __init__(self, notify: Callable[[int], None] | None = None, every_s: float = 0.5):
        self.count = 0
        self._notify = notify
        self._every_s = every_s
        self._told_at = time.monotonic()

    def __call__(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind not in self.KINDS:
            return
        self.count += 1
        if self._notify is not None and time.monotonic() - self._told_at >= self._every_s:
            self._told_at = time.monotonic()
            self._notify(self.count)


def recovering(
    one: Callable[[int], Any],
    orchestrator: Orchestrator,
    shots: int,
    start: int,
    shot_faults: ShotFaults | None,
    health_every: int = HEALTH_EVERY,
) -> Iterator[Any]:
    """``one(shot)`` for each shot, each abandoned and repeated after a transient fault;
    every ``health_every`` shots the instruments are first asked whether they rebooted
    while idle (``check_health``: their settings are re-applied if so)."""
    return recovering_batches(
        lambda first, _: [one(first)], orchestrator, shots, start, 1, shot_faults, health_every
    )


def recovering_batches(
    batch_of: Callable[[int, int], list[Any]],
    orchestrator: Orchestrator,
    shots: int,
    start: int,
    batch: int,
    shot_faults: ShotFaults | None,
    health_every: int = HEALTH_EVERY,
) -> Iterator[Any]:
    """``recovering`` for shots run ``batch`` at a time: ``batch_of(first, count)`` returns
    the records of shots ``first`` .. ``first + count - 1``; a batch that meets a transient
    fault is abandoned and run again whole; the records are yielded one by one. The health
    check runs before a batch holding a shot ``start + k * health_every`` (k >= 1)."""
    faults = shot_faults if shot_faults is not None else ShotFaults()
    instruments = list(orchestrator.network.instruments.values())
    end = start + shots
    for first in range(start, end, batch):
        count = min(batch, end - first)
        last = first + count - 1
        if (
            health_every
            and first > start
            and ((last - start) // health_every > (first - 1 - start) // health_every)
        ):
            for inst in instruments:
                inst.check_health()
        yield from attempt_shot(
            lambda: batch_of(first, count),  # noqa: B023
            orchestrator.nodes,
            faults,
        )


def elapsed_s(node: Any, start_s: float) -> float:
    """Simulated time since ``start_s`` on ``node`` (NaN if its controller is lost)."""
    try:
        return node.now_s() - start_s
    except (RpcError, InstrumentError):
        return float("nan")


@dataclass
class Collected:
    """What a run's shot loop produced and how it ended."""

    records: list[Any]
    interrupted: bool = False
    aborted: str | None = None
    lost_node: str | None = None
    wall_s: float = 0.0

    @property
    def stopped_early(self) -> bool:
        return self.interrupted or self.aborted is not None


def collect(
    shot_source: Iterator[Any],
    store: ShotStore | None,
    row: Callable[[Any], dict[str, Any]],
    progress: Callable[[int], None] | None,
    monitor: Any = None,
) -> Collected:
    """Run the shots, storing each as it completes. Ctrl-C/SIGTERM ends the loop as
    interrupted; a protocol or peer failure as aborted, with the message (and the lost node,
    when the heartbeat monitor saw one); completed shots are kept either way."""
    out = Collected(records=[])
    started = time.perf_counter()
    try:
        for record in shot_source:
            if monitor is not None:
                monitor.raise_if_lost()
            out.records.append(record)
            if store is not None:
                store.add_shot(**row(record))
            if progress is not None:
                progress(len(out.records))
    except KeyboardInterrupt:
        out.interrupted = True
    except (RpcError, OrchestrationError, NodeError, InstrumentError) as exc:
        out.aborted = (
            describe_fault(exc)
            if isinstance(exc, InstrumentError)
            else f"{type(exc).__name__}: {exc}"
        )
        if monitor is not None and monitor.lost:
            out.lost_node, reason = next(iter(monitor.lost.items()))
            out.aborted = f"node {out.lost_node} lost: {reason}"
    finally:
        if monitor is not None:
            monitor.stop()
    out.wall_s = time.perf_counter() - started
    return out


def finish(
    summary: dict[str, Any],
    collected: Collected,
    store: ShotStore | None,
    orchestrator: Orchestrator,
    network: Network,
    monitor: Any = None,
    shot_faults: ShotFaults | None = None,
) -> dict[str, Any]:
    """Record how the run ended (and the faults it met), close its stored run, and make
    every instrument safe (not waiting on a lost node)."""
    summary.update(interrupted=collected.interrupted, aborted=collected.aborted)
    faults = fault_summary(network, shot_faults or ShotFaults())
    if faults is not None:
        summary["faults"] = faults
    close_store(store, summary, collected.stopped_early)
    if collected.lost_node is not None:
        from .heartbeat import make_others_safe

        failures = make_others_safe(orchestrator.nodes, collected.lost_node)
        failures[collected.lost_node] = f"lost: {monitor.lost[collected.lost_node]}"
        failures.update(network.safe_state())
    else:
        failures = orchestrator.safe_state()
    summary["safe_state_failures"] = failures
    return summary


def new_store(
    network: Network,
    db_path: str | Path | None,
    name: str,
    columns: Any,
    loop: AnyLoop,
    shots: int,
    calibration: Mapping[str, Any] | None = None,
    durability: Durability | None = None,
) -> ShotStore | None:
    """A new stored run; ``calibration``: the calibration values in force (its metadata);
    ``durability``: how each shot reaches the disk (``control.storage``; None: the backend's
    default)."""
    if db_path is None:
        return None
    return ShotStore(
        db_path,
        run_name=name,
        columns=columns,
        config=network.loaded.config,
        seed=network.seed,
        backend=network.backend,
        requested_shots=shots,
        calibration=calibration,
        extra_metadata={"attempt_loop": loop.model_dump()},
        durability=durability,
    )


def close_store(store: ShotStore | None, summary: dict[str, Any], interrupted: bool) -> None:
    if store is None:
        return
    summary["run_id"] = store.run_id
    summary["database"] = str(store.db_path)
    summary["durability"] = store.durability
    if interrupted:
        store.close(KeyboardInterrupt())
    else:
        store.finish(summary)
        store.close()


def plan_run_resume(
    resume: int | None,
    db_path: str | Path | None,
    name: str,
    network_path: str | Path,
    backend: str | None,
    loop: AnyLoop,
    shots: int | None,
    seed: int | None,
) -> ResumePlan | None:
    """Where the run ``resume`` continues (None for a new run); refuses a mismatch."""
    if resume is None:
        return None
    if db_path is None:
        raise ValueError(f"--resume {resume}: a resumed run needs its database (not --no-store)")
    from .recovery import plan_resume

    plan = plan_resume(
        resume,
        db_path,
        run_name=name,
        network_path=network_path,
        backend=backend,
        attempt_loop=loop.model_dump(),
        shots=shots,
        seed=seed,
    )
    if plan.remaining == 0:
        raise ValueError(
            f"--resume {resume}: run {resume} already holds its {plan.requested} shots"
        )
    return plan


def open_store(
    plan: ResumePlan | None,
    network: Network,
    db_path: str | Path | None,
    name: str,
    columns: Any,
    loop: AnyLoop,
    shots: int,
    calibration: Mapping[str, Any] | None = None,
    durability: Durability | None = None,
) -> ShotStore | None:
    """A new stored run, or the resumed one (its entry notes the continuation's seed)."""
    if plan is None:
        return new_store(network, db_path, name, columns, loop, shots, calibration, durability)
    return ShotStore.resume(
        plan.run_id,
        plan.db_path,
        durability=durability,
        note={"continuation_seed": plan.continuation_seed},
    )


def resumed_totals(summary: dict[str, Any], plan: ResumePlan | None) -> None:
    """For a resumed run: shots and completeness of the whole stored run (the fidelity
    and rates above are this session's; ``qnode report`` summarises the whole run)."""
    if plan is None:
        return
    session = int(summary.get("shots") or 0)
    total = plan.stored + session
    summary.update(
        resumed_run=plan.run_id,
        shots_this_session=session,
        shots=total,
        requested_shots=plan.requested,
        complete=total == plan.requested,
        seed=plan.seed,
        continuation_seed=plan.continuation_seed,
    )
