"""Speed of the control plane between node controllers: figures only, nothing printed.

1. ``raw_zmq_roundtrip(n)`` - the floor: a pyzmq REQ/REP echo of a small message, echo
   server in another process, loopback TCP.
2. ``rpc_roundtrip(n)`` - ``RpcClient.call`` of a small method with a pydantic argument
   model, ``RpcServer`` in another process, loopback TCP, full validation both ways
   (request decoded and validated, args validated by the method's model, reply decoded and
   validated).
3. ``event_throughput(n)`` - validated events per second from an ``EventPublisher`` process
   to an ``EventSubscriber`` (loopback TCP), batched and unbatched.

Goals (checked by the runner): RPC median <= 100 us and <= 2x raw pyzmq, p99 <= 200 us;
events >= 100,000 per second. Round trips are timed one by one with ``perf_counter_ns``
after a warm-up; processes are started with ``spawn`` (no forked ZeroMQ state).
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
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


# --- raw pyzmq ------------------------------------------------------------------------------


def _echo_server(conn: Any) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    conn.send(f"tcp://127.0.0.1:{port}")
    while True:
        msg = sock.recv()
        sock.send(msg)
        if msg == b"stop":
            break
    sock.close(0)
    ctx.term()


def raw_zmq_roundtrip(n: int = 20_000, warmup: int = 2_000) -> dict[str, float]:
    """Median/p99 round trip (us) of a raw pyzmq REQ/REP echo between two processes."""
    import zmq

    parent, child = _MP.Pipe()
    proc = _MP.Process(target=_echo_server, args=(child,), daemon=True)
    proc.start()
    try:
        endpoint = parent.recv()
        ctx = zmq.Context()
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        clock = time.perf_counter_ns
        samples = []
        for i in range(warmup + n):
            t0 = clock()
            sock.send(SMALL)
            sock.recv()
            if i >= warmup:
                samples.append(clock() - t0)
        sock.send(b"stop")
        sock.recv()
        sock.close(0)
        ctx.term()
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    return {"message_bytes": len(SMALL), **_percentiles(samples)}


# --- RPC ------------------------------------------------------------------------------------


def _rpc_server(conn: Any) -> None:
    from pydantic import BaseModel, Field

    from control.rpc import RpcServer

    class SetPower(BaseModel):
        channel: int = Field(ge=0, le=7)
        power_mw: float = Field(ge=0.0, le=50.0)

    state = {"stop": False}

    def set_power(args: SetPower) -> dict[str, Any]:
        return {"channel": args.channel, "power_mw": args.power_mw}

    def stop() -> None:
        state["stop"] = True

    server = RpcServer(
        "bench", "tcp://127.0.0.1:*", {"set_power": (SetPower, set_power), "stop": (None, stop)}
    )
    conn.send(server.endpoint)
    while not state["stop"]:
        server.serve_once(100)
    server.close()


def rpc_roundtrip(n: int = 20_000, warmup: int = 2_000) -> dict[str, float]:
    """Median/p99 (us) of ``RpcClient.call('set_power', channel=1, power_mw=0.5)`` against an
    ``RpcServer`` in another process."""
    from control.rpc import RpcClient

    parent, child = _MP.Pipe()
    proc = _MP.Process(target=_rpc_server, args=(child,), daemon=True)
    proc.start()
    try:
        endpoint = parent.recv()
        client = RpcClient(endpoint, "bench-client", timeout_s=5.0)
        clock = time.perf_counter_ns
        call = client.call
        samples = []
        for i in range(warmup + n):
            t0 = clock()
            call("set_power", channel=1, power_mw=0.5)
            if i >= warmup:
                samples.append(clock() - t0)
        client.call("stop")
        client.close()
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    return _percentiles(samples)


# --- events ---------------------------------------------------------------------------------


def _publisher(conn: Any, n: int, batch: int) -> None:
    from control.events import EventPublisher

    pub = EventPublisher("tcp://127.0.0.1:*", node="alice", max_batch=batch, hwm=0)
    conn.send(pub.endpoint)
    conn.recv()  # the subscriber is connected
    for _ in range(3):  # let the subscription propagate, then announce
        pub.publish("state", state="starting")
        pub.flush()
        time.sleep(0.1)
    conn.recv()  # go
    publish = pub.publish
    for i in range(n):
        publish("herald", attempt=i, pattern="10", sim_time_s=i * 1e-6)
    pub.flush()
    pub.publish("state", state="done")
    pub.flush()
    conn.recv()  # the subscriber is finished
    pub.close()


def event_throughput(n: int = 200_000, batch: int = 256) -> dict[str, float]:
    """Validated events per second from a publisher process to a subscriber (this process),
    publishing ``n`` herald events in batches of ``batch`` (1 = unbatched)."""
    from control.events import EventSubscriber

    parent, child = _MP.Pipe()
    proc = _MP.Process(target=_publisher, args=(child, n, batch), daemon=True)
    proc.start()
    try:
        endpoint = parent.recv()
        sub = EventSubscriber([endpoint], hwm=0)
        parent.send("connected")
        while sub.recv(timeout_s=5.0) is None:  # the first 'state' event
            pass
        sub.drain()
        parent.send("go")
        heralds = 0
        first = last = None
        deadline = time.monotonic() + 60.0
        done = False
        while not done and time.monotonic() < deadline:
            for event in sub.poll(timeout_s=1.0):
                if event.kind == "herald":
                    if first is None:
                        first = time.perf_counter()
                    heralds += 1
                elif event.kind == "state" and event.data.get("state") == "done":
                    done = True
            last = time.perf_counter()
        parent.send("finished")
        stats = sub.stats()
        sub.close()
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    elapsed = (last - first) if first is not None and last is not None else float("nan")
    return {
        "events": heralds,
        "published": n,
        "batch": batch,
        "seconds": elapsed,
        "events_per_s": heralds / elapsed if elapsed > 0 else 0.0,
        "dropped": stats["dropped"],
        "malformed": stats["malformed"],
    }


def run_all(quick: bool = False) -> dict[str, Any]:
    """Every figure, for the runner."""
    n = 5_000 if quick else 20_000
    raw = raw_zmq_roundtrip(n)
    rpc = rpc_roundtrip(n)
    events = event_throughput(50_000 if quick else 200_000)
    events_unbatched = event_throughput(20_000 if quick else 50_000, batch=1)
    return {
        "raw_zmq": raw,
        "rpc": rpc,
        "rpc_over_raw_median": rpc["median_us"] / raw["median_us"],
        "events": events,
        "events_unbatched": events_unbatched,
        "goals": {
            "rpc_median_us": 100.0,
            "rpc_over_raw_median": 2.0,
            "rpc_p99_us": 200.0,
            "events_per_s": 100_000.0,
        },
    }
