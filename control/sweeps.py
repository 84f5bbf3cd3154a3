"""Sweeps of one parameter, each point a complete simulated run, run in parallel.

Points run on local worker processes by default, or on a Dask cluster when a scheduler
address is given (``dask.distributed``: in the ``dev`` and ``dask`` extras), so a large
simulated study can use many machines without new code (the workers need qnode installed).
Each point's seed is derived from the run's seed and the point's index
(``numpy.random.SeedSequence.spawn``), so a point's result does not depend on where or in
which order it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: parameters a sweep may vary, with their unit and the run function's keyword
SWEEPABLE = {
    "alpha": ("", "alpha"),
    "max_attempts": ("", "max_attempts"),
    "fibre_length_km": ("km", "fibre_length_km"),  # node to node, station at the midpoint
    "cutoff_s": ("s", "cutoff_s"),  # memory cut-off of swapping runs
    "max_time_us": ("us", "max_time_us"),  # cut-off on time of each attempt loop
}

#: the URL schemes of a Dask scheduler address
DASK_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://")


@dataclass(frozen=True)
class SweepSpec:
    """``name`` from ``start`` to ``stop`` in ``points`` linear steps."""

    name: str
    start: float
    stop: float
    points: int

    @classmethod
    def parse(cls, text: str) -> SweepSpec:
        """'alpha=0.05:0.2:4' -> alpha from 0.05 to 0.2 in 4 points."""
        try:
            name, rng = text.split("=", 1)
            start, stop, points = rng.split(":")
            spec = cls(name.strip(), float(start), float(stop), int(points))
        except ValueError:
            raise ValueError(
                f"--sweep {text!r}: expected NAME=START:STOP:POINTS, e.g. alpha=0.05:0.2:4"
            ) from None
        if spec.name not in SWEEPABLE:
            raise ValueError(f"--sweep {text!r}: can sweep {sorted(SWEEPABLE)}, not {spec.name!r}")
        if not 1 <= spec.points <= 1000:
            raise ValueError(f"--sweep {text!r}: POINTS={spec.points}, expected 1..1000")
        return spec

    def values(self) -> list[float]:
        values = np.linspace(self.start, self.stop, self.points).tolist()
        if self.name == "max_attempts":
            values = [int(round(v)) for v in values]
        return values


def point_seeds(seed: int, points: int) -> list[int]:
    """Independent, reproducible seeds for the points of a run seeded with ``seed``."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(points)]


def _run_point(job: tuple[Callable[..., dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    run, kwargs = job
    return run(**kwargs)


def run_sweep(
    run: Callable[..., dict[str, Any]],
    spec: SweepSpec,
    base_kwargs: dict[str, Any],
    seed: int,
    *,
    workers: int | None = None,
    dask_scheduler: str | None = None,
    on_point: Callable[[int, dict[str, Any]], None] | None = None,
    dask_timeout_s: float = 10.0,
) -> list[dict[str, Any]]:
    """Run ``run(**base_kwargs, <param>=value, seed=point_seed)`` for every point; results in
    point order, each with ``sweep_name``, ``sweep_value`` and ``point_seed`` added. With
    ``dask_scheduler`` the points run on that Dask cluster (connecting for at most
    ``dask_timeout_s``)."""
    if dask_scheduler is not None and not dask_scheduler.startswith(DASK_SCHEMES):
        raise ValueError(
            f"--dask {dask_scheduler!r}: expected a scheduler address such as tcp://host:8786"
        )
    values = spec.values()
    seeds = point_seeds(seed, len(values))
    keyword = SWEEPABLE[spec.name][1]
    jobs = []
    for index, (value, point_seed) in enumerate(zip(values, seeds, strict=True)):
        kwargs = {**base_kwargs, keyword: value, "seed": point_seed}
        db = kwargs.get("db_path")
        if db is not None:  # SQLite takes one writer: each point stores in its own database
            db = Path(db)
            kwargs["db_path"] = db.with_name(f"{db.stem}-{spec.name}-p{index}{db.suffix}")
        jobs.append((run, kwargs))
    results: list[dict[str, Any] | None] = [None] * len(jobs)

    def done(index: int, result: dict[str, Any]) -> None:
        result = {
            **result,
            "sweep_name": spec.name,
            "sweep_value": values[index],
            "point_seed": seeds[index],
        }
        results[index] = result
        if on_point is not None:
            on_point(index, result)

    if dask_scheduler is not None:
        _run_on_dask(jobs, dask_scheduler, dask_timeout_s, done)
    elif workers == 1 or len(jobs) == 1:
        for i, job in enumerate(jobs):
            done(i, _run_point(job))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_run_point, job): i for i, job in enumerate(jobs)}
            from concurrent.futures import as_completed as completed

            for future in completed(futures):
                done(futures[future], future.result())
    return [r for r in results if r is not None]


def _run_on_dask(
    jobs: list[Any], address: str, timeout_s: float, done: Callable[[int, dict[str, Any]], None]
) -> None:
    """Submit every point to the Dask scheduler at ``address``; ``done`` as each finishes."""
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ValueError("--dask needs dask.distributed: pip install -e '.[dask]'") from None
    try:
        client = Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        raise ValueError(
            f"--dask {address!r}: no Dask scheduler answered within {timeout_s:g} s ({exc}); "
            "expected the address of a running scheduler (dask scheduler)"
        ) from None
    with client:
        # pure=False: two points with equal arguments are still two runs
        futures = {client.submit(_run_point, job, pure=False): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            done(futures[future], future.result())


def sweep_table(results: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[list[Any]]:
    """Rows of (sweep value, *keys) for printing."""
    return [[r["sweep_value"], *(r.get(k) for k in keys)] for r in results]
