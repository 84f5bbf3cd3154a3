"""Speed of the control plane between node controllers: figures only, nothing printed.

1. ``raw_zmq_roundtrip(n)`` - the floor: a pyzmq REQ/REP echo of a small message, echo
   server in another process, loopback TCP.
2. ``rpc_roundtrip(n)`` - ``RpcClient.call`` of a small method with a pydantic argument
   model, ``RpcServer`` in another process, loopback TCP, full validation both ways
   (request decoded and validated together with the method's argument model, reply decoded
   and validated).
3. ``rpc_vs_raw(n)`` - both of the above at once, alternating blocks of calls, so that the
   ratio is not at the mercy of a shared machine's load changing between two runs; with two
   reference figures: the client blocking at once (``spin_us=0``), and raw pyzmq waiting for
   its reply the way the client does (spin briefly, then block).
4. ``event_throughput(n, batch)`` - validated events per second, end to end, from an
   ``EventPublisher`` process to an ``EventSubscriber`` (loopback TCP).

Goals (checked by the runner): RPC median <= 100 us and <= 2x raw pyzmq, p99 <= 200 us;
events >= 100,000 per second. Round trips are timed one by one with ``perf_counter_ns``
after a warm-up; processes are started with ``spawn`` (no forked ZeroMQ state).
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from collections.abc import Callable
from typing import Any

SMALL = b"x" * 48  # about the size of a small encoded call
_MP = mp.get_context("spawn")


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {
        "n": n,
        "median_us": statistics.median(ordered) / 1e3,
        "p99_us": ordered[min(n - 1, int(n * 0.99))] / 1e3,
        "mean_us": sum(ordered) / n / 1e3,
        "min_us": ordered[0] / 1e3,
    }


def _spawn(target: Callable[..., None], *args: Any) -> tuple[Any, Any, str]:
    """Start ``target(conn, *args)`` in a new process; returns (process, conn, endpoint)."""
    parent, child = _MP.Pipe()
    proc = _MP.Process(target=target, args=(child, *args), daemon=True)
    proc.start()
    if not parent.poll(60):
        proc.kill()
        raise RuntimeError(f"benchmark process {target.__name__} did not start")
    return proc, parent, parent.recv()


def _join(proc: Any) -> None:
    proc.join(10)
    if proc.is_alive():
        proc.kill()


# --- servers (run in their own process) -----------------------------------------------------


def _echo_server(conn: Any, spin_us: float = 0.0) -> None:
    """A REP echo; ``spin_us > 0`` waits for each request as ``RpcServer`` does (poll, then
    block: ``control.rpc.reply_wait``), 0 blocks in ``recv`` (the plain baseline)."""
    import zmq

    from control.rpc.reply_wait import SpinThenBlock

    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    conn.send(f"tcp://127.0.0.1:{port}")
    wait, clock = SpinThenBlock(spin_us), time.perf_counter
    replied = clock()
    while True:
        msg = wait.poll(sock)
        if msg is None:
            msg = sock.recv()
            wait.blocked_for(clock() - replied)
        sock.send(msg)
        replied = clock()
        if msg == b"stop":
            break
    sock.close(0)
    ctx.term()


def _rpc_server(conn: Any, spin_us: float = 200.0) -> None:
    from pydantic import BaseModel, Field

    from control.rpc import RpcServer

    class SetPower(BaseModel):
        channel: int = Field(ge=0, le=7)
        power_mw: float = Field(ge=0.0, le=50.0)

    def set_power(args: SetPower) -> dict[str, Any]:
        return {"channel": args.channel, "power_mw": args.power_mw}

    methods = {"set_power": (SetPower, set_power), "stop": (None, lambda: server.request_stop())}
    server = RpcServer("bench", "tcp://127.0.0.1:*", methods, spin_us=spin_us)
    conn.send(server.endpoint)
    server.serve_forever()
    server.close()


# --- round trips ----------------------------------------------------------------------------


def _raw_client(
    endpoint: str, spin_us: float = 0.0
) -> tuple[Callable[[], object], Callable[[], None]]:
    """A REQ socket echoing ``SMALL``; ``spin_us > 0`` waits for each reply as ``RpcClient``
    does (``control.rpc.reply_wait``), 0 blocks in ``recv`` at once (the plain baseline).
    Its ``stop()`` stops the server, then closes it."""
    import zmq

    from control.rpc.reply_wait import SpinThenBlock

    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    send, recv = sock.send, sock.recv
    wait = SpinThenBlock(spin_us)
    clock = time.perf_counter

    def once() -> object:
        send(SMALL)
        return recv()

    def once_spinning() -> object:
        sent = clock()
        send(SMALL)
        reply = wait.poll(sock)
        if reply is None:
            reply = recv()
            wait.blocked_for(clock() - sent)
        return reply

    def stop() -> None:
        send(b"stop")
        recv()
        sock.close(0)

    return (once_spinning if spin_us > 0 else once), stop


def _rpc_client(
    endpoint: str, spin_us: float | None = None
) -> tuple[Callable[[], object], Callable[[], None]]:
    """``RpcClient.call`` of ``set_power``; ``spin_us=None`` keeps the client's default. Its
    ``stop()`` stops the server, then closes it."""
    from control.rpc import RpcClient

    options = {} if spin_us is None else {"spin_us": spin_us}
    client = RpcClient(endpoint, "bench-client", timeout_s=5.0, **options)
    call = client.call

    def once() -> object:
        return call("set_power", channel=1, power_mw=0.5)

    def stop() -> None:
        client.call("stop")
        client.close()

    return once, stop


def _time(once: Callable[[], object], n: int, samples: list[int]) -> None:
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        once()
        samples.append(clock() - t0)


def _roundtrip(server: Callable[..., None], client: Callable, n: int, warmup: int) -> dict:
    proc, _, endpoint = _spawn(server)
    try:
        once, stop = client(endpoint)
        _time(once, warmup, [])
        samples: list[int] = []
        _time(once, n, samples)
        stop()
    finally:
        _join(proc)
    return _percentiles(samples)


def raw_zmq_roundtrip(n: int = 20_000, warmup: int = 2_000) -> dict[str, float]:
    """Median/p99 round trip (us) of a raw pyzmq REQ/REP echo between two processes."""
    return {"message_bytes": len(SMALL), **_roundtrip(_echo_server, _raw_client, n, warmup)}


def rpc_roundtrip(n: int = 20_000, warmup: int = 2_000) -> dict[str, float]:
    """Median/p99 (us) of ``RpcClient.call('set_power', channel=1, power_mw=0.5)`` against an
    ``RpcServer`` in another process."""
    return _roundtrip(_rpc_server, _rpc_client, n, warmup)


def rpc_vs_raw(n: int = 20_000, warmup: int = 2_000, block: int = 500) -> dict[str, Any]:
    """Round trips measured in alternating blocks of ``block`` calls, so that every figure
    sees the same machine load, with the ratio of the medians of RPC and raw:

    * ``raw``: pyzmq REQ/REP, blocking ``recv`` on both sides (the baseline of the goals);
    * ``rpc``: ``RpcClient`` as shipped and ``RpcServer`` as a node process runs it (each
      polls briefly for the next message, then blocks);
    * ``rpc_blocking``: both blocking at once (``spin_us=0``);
    * ``raw_spinning``: raw REQ/REP with both sides waiting as the RPC ones do - what the
      same waits give without validation and framing."""
    processes, endpoints = [], {}
    for name, server, spin_us in (
        ("raw", _echo_server, 0.0),
        ("raw_spinning", _echo_server, 200.0),
        ("rpc", _rpc_server, 200.0),
        ("rpc_blocking", _rpc_server, 0.0),
    ):
        proc, _, endpoints[name] = _spawn(server, spin_us)
        processes.append(proc)
    clients = {
        "raw": _raw_client(endpoints["raw"]),
        "rpc": _rpc_client(endpoints["rpc"]),
        "rpc_blocking": _rpc_client(endpoints["rpc_blocking"], spin_us=0),
        "raw_spinning": _raw_client(endpoints["raw_spinning"], spin_us=200.0),
    }
    samples: dict[str, list[int]] = {name: [] for name in clients}
    try:
        for once, _ in clients.values():
            _time(once, warmup, [])
        while len(samples["rpc"]) < n:
            for name, (once, _) in clients.items():
                _time(once, min(block, n - len(samples[name])), samples[name])
        for _, stop in clients.values():
            stop()
    finally:
        for proc in processes:
            _join(proc)
    stats = {name: _percentiles(values) for name, values in samples.items()}
    return {
        **stats,
        "rpc_over_raw_median": stats["rpc"]["median_us"] / stats["raw"]["median_us"],
    }


# --- events ---------------------------------------------------------------------------------


def _publisher(conn: Any, n: int, batch: int, warmup: int) -> None:
    from control.events import EventPublisher

    pub = EventPublisher("tcp://127.0.0.1:*", node="alice", max_batch=batch, hwm=0)
    conn.send(pub.endpoint)
    conn.recv()  # the subscriber is connected
    while not conn.poll(0.05):  # until the subscriber has seen something (slow joiner)
        pub.publish("state", state="starting")
        pub.flush()
    conn.recv()
    for i in range(warmup):
        pub.publish("progress", done=i, total=warmup)
    pub.publish("state", state="warm")
    pub.flush()
    conn.recv()  # go
    publish = pub.publish
    t0 = time.perf_counter()
    for i in range(n):
        publish("herald", attempt=i, pattern="10", sim_time_s=i * 1e-6)
    pub.flush()
    elapsed = time.perf_counter() - t0
    pub.publish("state", state="done")
    pub.flush()
    conn.recv()  # the subscriber is finished
    conn.send(elapsed)
    pub.close()


def _until_state(sub: Any, state: str, timeout_s: float = 60.0) -> int:
    """Consume events until a 'state' event with ``state``; returns the heralds seen."""
    heralds = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in sub.poll(timeout_s=1.0, max_events=4096):
            if event.kind == "herald":
                heralds += 1
            elif event.kind == "state" and event.data.get("state") == state:
                return heralds
    raise RuntimeError(f"no '{state}' event within {timeout_s} s")


def event_throughput(n: int = 200_000, batch: int = 256, warmup: int = 5_000) -> dict[str, Any]:
    """Validated events per second, end to end (from the publisher's start to the last event
    validated by the subscriber), for ``n`` herald events published in batches of ``batch``
    (1 = unbatched); also the publisher's own rate and any events lost."""
    from control.events import EventSubscriber

    proc, conn, endpoint = _spawn(_publisher, n, batch, warmup)
    try:
        sub = EventSubscriber([endpoint], hwm=0)
        conn.send("connected")
        while sub.recv(timeout_s=0.05) is None:
            pass
        conn.send("seen")
        _until_state(sub, "warm")
        conn.send("go")
        start = time.perf_counter()
        heralds = _until_state(sub, "done")
        elapsed = time.perf_counter() - start
        conn.send("finished")
        publisher_s = conn.recv()
        stats = sub.stats()
        sub.close()
    finally:
        _join(proc)
    return {
        "events": heralds,
        "published": n,
        "batch": batch,
        "seconds": elapsed,
        "events_per_s": heralds / elapsed,
        "publisher_events_per_s": n / publisher_s if publisher_s > 0 else 0.0,
        "dropped": stats["dropped"],
        "malformed": stats["malformed"],
    }


def run_all(quick: bool = False) -> dict[str, Any]:
    """Every figure, for the runner."""
    n = 5_000 if quick else 20_000
    return {
        "interleaved": rpc_vs_raw(n),
        "events": event_throughput(50_000 if quick else 200_000),
        "events_unbatched": event_throughput(20_000 if quick else 50_000, batch=1),
        "goals": {
            "rpc_median_us": 100.0,
            "rpc_over_raw_median": 2.0,
            "rpc_p99_us": 200.0,
            "events_per_s": 100_000.0,
        },
    }
