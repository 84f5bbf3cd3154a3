"""Run every benchmark and print figures with their ratios against baselines measured in the
same run:  python -m benchmarks [--quick] [--no-sequence] [--instructions] [--json FILE]

1. Physics engine: delivered heralded pairs per wall-clock second on a two-node link with
   full density matrices and noise, at success probabilities 1e-2, 1e-4, 1e-6 per attempt.
   Goals: >= 30,000 pairs/s, and at most 2x between the 1e-2 and 1e-6 cases.
2. Against SeQUeNCe (optional extra `pip install -e .[bench]`) on its Barrett-Kok
   router-to-router scenario at 1 km and 100 km. Goals: >= 100x at 1 km, >= 1,000x at 100 km.
3. Control plane: RPC round trip between node processes (median, p99) next to raw pyzmq
   REQ/REP in the same run (goals: median <= 100 us and <= 2x raw, p99 <= 200 us); live
   events per second (goal >= 100,000).
4. Instrument transactions: a driver query against the raw pyvisa handle in the same run
   (goal: <= 1.5x).
5. End-to-end teleportations per wall-clock second over the three-node chain, in one process
   as shot programs, one shot or 16 per transaction (goal: >= 2,000 per second), against
   the same protocol driven step by step (the baseline, interleaved in the same run), with
   node controllers behind RPC in this process, and with one process per node (the shared
   simulated lab and three node controller processes on loopback, as a network runs).
6. With ``--instructions`` (needs valgrind): CPU instructions per teleportation in one
   process, each way, against the step-by-step baseline: a figure the machine's load does
   not change (``benchmarks.cpu_instructions``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

from .engine_throughput import pairs_per_second
from .sequence_baseline import (
    default_sim_time_s,
    run_sequence_barrett_kok,
    sequence_available,
    sequence_version,
)
from .sequence_comparison import our_barrett_kok


def _verdict(ok: bool) -> str:
    return "meets goal" if ok else "BELOW GOAL"


#: shots per program transaction in the batched teleportation figure
BATCH = 16


def _interleaved(measure: Any, shots: int, rounds: int = 3) -> tuple[dict, dict, dict]:
    """The best of ``rounds`` alternating runs of shot programs one shot at a time, in
    batches of ``BATCH``, and step by step, so all see the same machine load."""
    ways = {"single": {}, "batched": {"batch": BATCH}, "stepwise": {"stepwise": True}}
    best: dict[str, dict] = {}
    for _ in range(rounds):
        for name, options in ways.items():
            r = measure(shots, **options)
            if name not in best or r["teleportations_per_s"] > best[name]["teleportations_per_s"]:
                best[name] = r
    return best["single"], best["batched"], best["stepwise"]


def _instructions() -> dict[str, float] | None:
    """Section 6: instructions per teleportation (callgrind), or None without valgrind."""
    from .cpu_instructions import WAYS, instructions_per_teleportation, valgrind_available

    print("== CPU instructions per teleportation, one process (valgrind callgrind)")
    if not valgrind_available():
        print("  skipped: valgrind is not installed")
        return None
    counts = {way: instructions_per_teleportation(way) for way in WAYS}
    for way, count in counts.items():
        versus = (
            "the baseline"
            if way == "stepwise"
            else f"{counts['stepwise'] / count:.2f}x fewer than step by step"
        )
        print(f"  {WAYS[way]['label']}: {count / 1e6:.3f} M instructions each, {versus}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="qnode benchmarks")
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    parser.add_argument("--no-sequence", action="store_true", help="skip the SeQUeNCe comparison")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count CPU instructions per teleportation under valgrind (5-15 min)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write all figures to FILE as JSON")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else 2.0
    results: dict[str, object] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
    }

    print("== Physics engine: delivered pairs per wall-clock second (two-node link, full noise)")
    engine = {}
    for p in (1e-2, 1e-4, 1e-6):
        r = pairs_per_second(p, min_time_s=seconds)
        engine[p] = r
        print(
            f"  p = {p:7.0e}: {r['pairs_per_s']:10,.0f} pairs/s  ({r['pairs']} pairs, "
            f"{r['attempts']:.3g} attempts, {r['simulated_s']:.3g} simulated s, "
            f"{r['wall_s']:.2f} wall s)  {_verdict(r['pairs_per_s'] >= 30_000)} (>= 30,000)"
        )
    ratio = engine[1e-2]["pairs_per_s"] / engine[1e-6]["pairs_per_s"]
    print(f"  rate(1e-2) / rate(1e-6) = {ratio:.2f}  {_verdict(ratio <= 2.0)} (<= 2x)")
    results["engine"] = {str(p): r for p, r in engine.items()}
    results["engine_ratio_1e-2_over_1e-6"] = ratio

    print("== Against SeQUeNCe: Barrett-Kok, router to router, BSM at the midpoint, 0.2 dB/km")
    if args.no_sequence:
        print("  skipped (--no-sequence)")
    elif not sequence_available():
        print("  skipped: SeQUeNCe is not installed (pip install -e '.[bench]')")
    else:
        comparison = {}
        for distance, goal in ((1.0, 100.0), (100.0, 1000.0)):
            ours = our_barrett_kok(distance, min_time_s=seconds)
            sim_time = default_sim_time_s(distance) * (0.5 if args.quick else 1.0)
            theirs = run_sequence_barrett_kok(distance, sim_time)
            speedup = ours["pairs_per_s"] / theirs["pairs_per_s"]
            comparison[distance] = {"ours": ours, "sequence": theirs, "speedup": speedup}
            print(
                f"  {distance:5.0f} km: ours {ours['pairs_per_s']:10,.0f} pairs/s "
                f"(p {ours['success_probability']:.4g}, F {ours['state_fidelity']:.3f}); "
                f"SeQUeNCe {sequence_version()} {theirs['pairs_per_s']:8.1f} pairs/s "
                f"({theirs['pairs']} pairs, p {theirs['success_probability'] or 0:.4g}); "
                f"ratio {speedup:,.0f}x  {_verdict(speedup >= goal)} (>= {goal:,.0f}x)"
            )
        results["sequence"] = {
            str(d): {**c, "sequence": {k: v for k, v in c["sequence"].items() if k != "parameters"}}
            for d, c in comparison.items()
        }
    print("== Control plane: node controller <-> orchestrator over ZeroMQ (loopback)")
    from .control_plane import run_all

    cp = run_all(quick=args.quick)
    raw, rpc = cp["interleaved"]["raw"], cp["interleaved"]["rpc"]
    ratio = cp["interleaved"]["rpc_over_raw_median"]
    print(
        f"  raw pyzmq REQ/REP, blocking recv on both sides: median {raw['median_us']:.0f} us, "
        f"p99 {raw['p99_us']:.0f} us"
    )
    print(
        f"  qnode RPC (validated): median {rpc['median_us']:.0f} us "
        f"{_verdict(rpc['median_us'] <= 100)} (<= 100 us), p99 {rpc['p99_us']:.0f} us "
        f"{_verdict(rpc['p99_us'] <= 200)} (<= 200 us), {ratio:.2f}x raw "
        f"{_verdict(ratio <= 2.0)} (<= 2x)"
    )
    for name, what in (
        ("rpc_blocking", "qnode RPC, client and server blocking at once (spin_us=0)"),
        ("raw_spinning", "raw pyzmq REQ/REP, both sides waiting as qnode RPC does"),
    ):
        ref = cp["interleaved"][name]
        median, p99 = ref["median_us"], ref["p99_us"]
        print(f"    for reference, {what}: median {median:.0f} us, p99 {p99:.0f} us")
    ev = cp["events"]["events_per_s"]
    print(f"  live events: {ev:,.0f} validated events/s {_verdict(ev >= 100_000)} (>= 100,000)")
    results["control_plane"] = cp

    print("== Instrument transactions: driver ask against the raw pyvisa handle, same run")
    from .transaction_overhead import ask_vs_raw

    tx = ask_vs_raw(n=2_000 if args.quick else 10_000)
    print(
        f"  driver ask {tx['ask_us']:.1f} us, raw handle query {tx['raw_us']:.1f} us: "
        f"{tx['ask_over_raw']:.2f}x {_verdict(tx['ask_over_raw'] <= 1.5)} (<= 1.5x); "
        f"driver write with error check {tx['write_us']:.1f} us"
    )
    results["transactions"] = tx

    print("== Teleportation over Alice - Bob - Charlie, end to end (wall clock)")
    from .teleport_throughput import teleportations_per_second

    shots = 96 if args.quick else 640
    local, batched, baseline = _interleaved(teleportations_per_second, shots)
    remote = teleportations_per_second(shots // 2, over_rpc=True)
    speedup = local["teleportations_per_s"] / baseline["teleportations_per_s"]
    for label, r in (("shot programs", local), (f"batches of {BATCH}", batched)):
        print(
            f"  one process, {label}: {r['teleportations_per_s']:,.0f} /s "
            f"{_verdict(r['teleportations_per_s'] >= 2000)} (>= 2,000), "
            f"{r['instrument_messages_per_teleportation']:.1f} instrument messages each"
        )
    print(
        f"  one process, step by step (baseline, same run): "
        f"{baseline['teleportations_per_s']:,.0f} /s, "
        f"{baseline['instrument_messages_per_teleportation']:.1f} messages each; "
        f"shot programs {speedup:.2f}x, batches "
        f"{batched['teleportations_per_s'] / baseline['teleportations_per_s']:.2f}x"
    )
    print(f"  node controllers over RPC, in this process: {remote['teleportations_per_s']:,.0f} /s")
    from .teleport_processes import teleportations_per_second_in_processes

    processes = teleportations_per_second_in_processes(shots // 2, batches=(1, BATCH))
    print(
        "  one process per node (simulated lab + 3 node processes, CURVE, loopback): "
        + ", ".join(
            f"{r['teleportations_per_s']:,.0f} /s in batches of {b}" for b, r in processes.items()
        )
    )
    results["teleport"] = {
        "one_process": local,
        "batched": batched,
        "stepwise": baseline,
        "over_rpc": remote,
        "one_process_per_node": processes,
        "speedup_over_stepwise": speedup,
    }

    if args.instructions:
        results["instructions_per_teleportation"] = _instructions()

    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
