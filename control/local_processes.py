"""One process per node on this machine: the shared simulated lab (`qnode simlab`) and a
node controller process per node (`qnode serve`), started together and stopped together.

This is how a network runs one PC per node, brought onto one machine over loopback TCP for
dry runs, tests and benchmarks. The processes are the same commands an operator starts by
hand; this only saves the five terminals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .network_config import load_network


class LocalProcessError(RuntimeError):
    """A node or simulated-lab process did not start; the message names it and its log."""


@dataclass
class LocalNetwork:
    """The running processes: where the simulated lab's port map is, each node's control
    endpoint, and the processes themselves (by node; ``simlab`` for the lab)."""

    port_map: Path
    endpoints: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)


@contextmanager
def local_node_processes(
    network_path: str | Path,
    workdir: str | Path,
    *,
    plaintext: bool = False,
    seed: int | None = None,
    start_timeout_s: float = 60.0,
    stop_timeout_s: float = 30.0,
) -> Iterator[LocalNetwork]:
    """Start the simulated lab of ``network_path`` and one node controller process per
    node; yield when every node answers on its endpoint. ``workdir`` holds the port map,
    the endpoint files and each process's log. On exit the nodes are stopped first (they
    make their instruments safe), then the lab; a process that does not stop within
    ``stop_timeout_s`` is killed. ``plaintext``: unencrypted control messages, for a
    network file without ``security.keys_dir``; ``seed``: the simulated lab's (default:
    the file's)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nodes = list(load_network(network_path).config.nodes)
    port_map = workdir / "simlab.json"
    port_map.unlink(missing_ok=True)
    running = LocalNetwork(port_map, {})
    try:
        _start(
            running,
            "simlab",
            workdir,
            ["simlab", "--config", str(network_path), "--port-map", str(port_map)]
            + ([] if seed is None else ["--seed", str(seed)]),
        )
        _wait_for_file(port_map, running, "simlab", start_timeout_s)
        ready = {}
        for node in nodes:
            ready[node] = workdir / f"{node}.endpoint"
            ready[node].unlink(missing_ok=True)
            command = [
                "serve",
                "--node",
                node,
                "--config",
                str(network_path),
                "--simlab",
                str(port_map),
                "--ready-file",
                str(ready[node]),
            ]
            _start(running, node, workdir, command + (["--plaintext"] if plaintext else []))
        for node, path in ready.items():
            running.endpoints[node] = _wait_for_file(path, running, node, start_timeout_s)
        yield running
    finally:
        _stop(running, stop_timeout_s)


def _start(running: LocalNetwork, name: str, workdir: Path, args: list[str]) -> None:
    log = workdir / f"{name}.log"
    running.logs[name] = log
    with log.open("w") as out:  # the child keeps its own descriptor
        running.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "control.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _wait_for_file(path: Path, running: LocalNetwork, name: str, limit_s: float) -> str:
    """The contents of ``path`` once the process ``name`` has written it."""
    proc = running.processes[name]
    deadline = time.monotonic() + limit_s
    while not path.exists():
        if proc.poll() is not None:
            raise LocalProcessError(
                f"{name} exited with code {proc.returncode} before it was ready; "
                f"its log {running.logs[name]}:\n{_tail(running.logs[name])}"
            )
        if time.monotonic() > deadline:
            raise LocalProcessError(
                f"{name} was not ready within {limit_s:g} s (no {path}); "
                f"its log {running.logs[name]}:\n{_tail(running.logs[name])}"
            )
        time.sleep(0.05)
    return path.read_text()


def _stop(running: LocalNetwork, timeout_s: float) -> None:
    """Nodes first (SIGTERM: each makes its instruments safe), then the lab."""
    nodes = [n for n in running.processes if n != "simlab"]
    for group in (nodes, [n for n in running.processes if n == "simlab"]):
        for name in group:
            if running.processes[name].poll() is None:
                running.processes[name].send_signal(signal.SIGTERM)
        for name in group:
            try:
                running.processes[name].wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                running.processes[name].kill()
                running.processes[name].wait()


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
