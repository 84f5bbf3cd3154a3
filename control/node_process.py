"""`qnode serve`: one node controller in its own process (in the lab: on the node's PC),
owning its instruments and answering the orchestrator over ZeroMQ until stopped."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from sequences.attempt_loop import NodeOptics

from .backend import open_network
from .calibrated import calibrated_optics, store_beside
from .node import NodeController, NodeInstruments
from .node_service import serve_node


def run_node_process(
    network_path: str | Path,
    node: str,
    bind: str,
    *,
    simlab: str | Path | None = None,
    backend: str | None = None,
    ready_file: str | Path | None = None,
    optics: NodeOptics | None = None,
    stop: threading.Event | None = None,
    plaintext: bool = False,
) -> None:
    """Serve ``node``'s controller on ``bind`` until SIGTERM/SIGINT (or ``stop`` is set);
    then its instruments go to their safe state and are closed."""
    from .keys import node_security

    network = open_network(network_path, backend=backend, only=[node], simlab=simlab)
    stop = stop or threading.Event()
    try:
        # the latest passed calibrations beside the file, as in-process controllers take them
        store = store_beside(network.loaded.path)
        if optics is None:
            optics = NodeOptics(converter_pump_mw=500.0, converter_temperature_c=55.0)
            if store is not None:
                optics = calibrated_optics(store, network.loaded.config, node, optics)
        pi_amplitude = store.pi_pulse_amplitude_v(node) if store is not None else None
        controller = NodeController(
            node, NodeInstruments.of(network, node), optics, pi_pulse_amplitude_v=pi_amplitude
        )
        security = node_security(network.loaded, node, plaintext)
        # the server's thread has this process to itself (the main thread waits for the
        # stop): its loop may poll for the next request instead of sleeping between them
        server = serve_node(
            controller, bind, backend=network.backend, security=security, spin_us=200.0
        )
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        server.start()
        try:
            if ready_file is not None:
                path = Path(ready_file)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(server.endpoint)
                tmp.replace(path)
            stop.wait()
        finally:
            server.stop()
            controller.safe_state()
    finally:
        network.close()
