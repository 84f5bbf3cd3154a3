"""RpcServer / RpcClient over real ZeroMQ sockets on loopback."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import msgpack
import pytest
import zmq
from pydantic import BaseModel, Field

from control.messages import ErrorCode, decode, dumps
from control.rpc import RpcClient, RpcError, RpcServer, RpcTimeout

LOOPBACK = "tcp://127.0.0.1:*"


class SetPower(BaseModel):
    channel: int = Field(ge=0, le=7)
    power_mw: float = Field(ge=0.0, le=50.0)


class Echo(BaseModel):
    value: int


class Reading(BaseModel):
    channel: int
    power_mw: float


def _set_power(args: SetPower) -> Reading:
    return Reading(channel=args.channel, power_mw=args.power_mw)


def _explode(args: Echo) -> None:
    raise RuntimeError(f"interlock tripped on {args.value}")


METHODS = {
    "set_power": (SetPower, _set_power),
    "echo": (Echo, lambda a: a.value),
    "explode": (Echo, _explode),
    "status": (None, lambda: {"temperature_k": 4.2}),
    "unsendable": (None, lambda: {"when": object()}),
}


@pytest.fixture
def server() -> Iterator[RpcServer]:
    with RpcServer("alice", LOOPBACK, METHODS) as srv:
        yield srv


@pytest.fixture
def client(server: RpcServer) -> Iterator[RpcClient]:
    with RpcClient(server.endpoint, "orchestrator", timeout_s=5.0) as c:
        yield c


def _raw(endpoint: str, kind: int = zmq.DEALER) -> zmq.Socket:
    sock = zmq.Context.instance().socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    return sock


def test_hello_and_ping(server: RpcServer, client: RpcClient) -> None:
    assert client.server.name == "alice"
    assert client.server.version == 1
    assert set(client.server.methods) == {*METHODS, "lock", "unlock"}
    health = client.ping()
    assert health.node == "alice"
    assert health.backend == "simulated"
    assert health.uptime_s >= 0
    assert not health.busy and health.owner is None
    server.busy = True
    assert client.ping().busy


def test_call_returns_the_result(client: RpcClient) -> None:
    assert client.call("set_power", channel=3, power_mw=1.5) == {"channel": 3, "power_mw": 1.5}
    assert client.call("echo", value=7) == 7
    assert client.call("status") == {"temperature_k": 4.2}
    assert client.request("echo", {"value": 8}, timeout_s=1.0) == 8


def test_json_client(server: RpcServer) -> None:
    with RpcClient(server.endpoint, "json-client", fmt="json") as c:
        assert c.call("echo", value=-1) == -1
        assert c.ping().node == "alice"


def test_unknown_method(client: RpcClient) -> None:
    with pytest.raises(RpcError) as info:
        client.call("self_destruct")
    assert info.value.code is ErrorCode.unknown_method
    assert "no method 'self_destruct'" in str(info.value)
    assert "set_power" in info.value.info.message


def test_bad_arguments_name_field_value_and_expectation(client: RpcClient) -> None:
    with pytest.raises(RpcError) as info:
        client.call("set_power", channel=1, power_mw=90.0)
    assert info.value.code is ErrorCode.bad_arguments
    message = info.value.info.message
    assert "args.power_mw: got 90.0 (float); Input should be less than or equal to 50" in message
    [problem] = info.value.info.details["errors"]
    assert problem["field"] == "args.power_mw" and problem["value"] == 90.0

    with pytest.raises(RpcError, match="args.channel: missing"):
        client.call("set_power", power_mw=1.0)
    with pytest.raises(RpcError, match="args.channel: got 'two' \\(str\\)"):
        client.call("set_power", channel="two", power_mw=1.0)
    with pytest.raises(RpcError, match="args.verbose: unexpected field") as info:
        client.call("status", verbose=True)
    assert info.value.code is ErrorCode.bad_arguments


def test_handler_exception_becomes_failed_and_the_server_keeps_serving(
    client: RpcClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="control.rpc"), pytest.raises(RpcError) as info:
        client.call("explode", value=3)
    assert info.value.code is ErrorCode.failed
    assert "explode raised RuntimeError: interlock tripped on 3" in str(info.value)
    assert info.value.info.details == {"exception": "RuntimeError"}
    assert "handler 'explode' raised" in caplog.text
    assert client.call("echo", value=4) == 4


def test_unsendable_result_is_a_failed_error(client: RpcClient) -> None:
    with pytest.raises(RpcError, match="unsendable result") as info:
        client.call("unsendable")
    assert info.value.code is ErrorCode.failed
    assert client.call("echo", value=5) == 5


def test_garbage_gets_an_error_reply_and_the_server_keeps_serving(
    server: RpcServer, client: RpcClient
) -> None:
    dealer = _raw(server.endpoint)
    req = _raw(server.endpoint, zmq.REQ)
    try:
        for junk in (b"\x00\xff garbage", b"", b"{not json", msgpack.packb([1, 2, 3])):
            dealer.send(junk)
            reply = decode(dealer.recv())
            assert reply.type == "error" and reply.id == ""
            assert reply.error.code is ErrorCode.bad_message
            req.send(junk)  # a REQ peer (empty delimiter frame) is answered too
            assert decode(req.recv()).type == "error"
        # a readable id is echoed, so the sender can match the error
        dealer.send(msgpack.packb({"v": 1, "id": "q1", "type": "call", "method": 5}))
        reply = decode(dealer.recv())
        assert reply.id == "q1" and "method: got 5 (int)" in reply.error.message
        # multi-frame junk from a DEALER: the extra frames are treated as envelope
        dealer.send_multipart([b"a", b"b", b"\x01"])
        assert dealer.recv() == b"a" and dealer.recv() == b"b"
        assert decode(dealer.recv()).type == "error"
    finally:
        dealer.close(0)
        req.close(0)
    assert client.call("echo", value=6) == 6


def test_oversized_request_gets_an_error_naming_the_size() -> None:
    with (
        RpcServer("small", LOOPBACK, METHODS, max_message_bytes=1000) as srv,
        RpcClient(srv.endpoint, "c") as c,
    ):
        with pytest.raises(RpcError) as info:
            c.call("echo", value=1, padding="x" * 2000)
        assert info.value.code is ErrorCode.bad_message
        assert "exceeds the limit of 1000 bytes" in str(info.value)
        assert c.call("echo", value=2) == 2
        # far beyond the limit, ZeroMQ drops the frame (and that peer) before Python sees it
        dealer = _raw(srv.endpoint)
        dealer.send(b"\x81" + b"x" * 10_000)
        dealer.close(0)
        assert c.call("echo", value=3) == 3
        # the client refuses to send what exceeds its own limit
        with (
            RpcClient(srv.endpoint, "tiny", max_message_bytes=300) as tiny,
            pytest.raises(RpcError, match="exceeds the limit"),
        ):
            tiny.call("echo", pad="y" * 400)


def test_reply_is_in_the_format_of_the_request(server: RpcServer) -> None:
    request = b'{"v":1,"id":"j1","type":"call","method":"echo","args":{"value":3}}'
    assert server.handle(request).startswith(b"{")
    assert decode(server.handle(request)).result == 3
    assert server.handle(dumps({"v": 1, "id": "m1", "type": "ping"}))[0] & 0xF0 == 0x80


def test_the_shortcut_for_msgpack_calls_answers_as_the_general_path(server: RpcServer) -> None:
    """handle() takes a shortcut for a msgpack call of a served method on an unlocked node;
    every request answers byte for byte as the general path (_handle) answers it."""
    base = {"v": 1, "id": "s1", "type": "call", "method": "echo", "args": {"value": 3}}
    variants = [
        base,
        {**base, "args": {"value": "x", "extra": 1}},  # bad arguments
        {**base, "method": ["echo"]},  # unhashable method name
        {**base, "method": "nope"},  # unknown method
        {**base, "v": True},  # a bool is not a version
        {**base, "v": 2},  # another protocol version
        {**base, "owner": 5},  # ill-typed owner
        {**base, "method": "lock", "args": {"owner": "me"}},  # built in: general path
    ]
    for fields in variants:
        payload = msgpack.packb(fields)
        calls = server.calls
        assert server.handle(payload) == server._handle(payload), fields
        server._owner = None  # the lock variant took the lock (twice)
        server.calls = calls


def test_version_mismatch_is_refused_at_hello(server: RpcServer) -> None:
    dealer = _raw(server.endpoint)
    try:
        dealer.send(
            msgpack.packb({"v": 1, "id": "h", "type": "hello", "name": "old", "version": 2})
        )
        reply = decode(dealer.recv())
        assert reply.error.code is ErrorCode.version_mismatch
        assert "'old' speaks protocol version 2; server 'alice' speaks version 1" in (
            reply.error.message
        )
        dealer.send(msgpack.packb({"v": 2, "id": "h2", "type": "hello", "name": "new"}))
        reply = decode(dealer.recv())
        assert reply.id == "h2" and reply.error.code is ErrorCode.version_mismatch
    finally:
        dealer.close(0)
    # a server that claims another version is refused by the client
    server._hello = {**server._hello, "version": 2}
    with pytest.raises(RpcError) as info:
        RpcClient(server.endpoint, "c")
    assert info.value.code is ErrorCode.version_mismatch
    assert "server 'alice' speaks protocol version 2; this client speaks version 1" in str(
        info.value
    )


def test_reply_of_another_protocol_version_is_a_version_mismatch(server: RpcServer) -> None:
    client = RpcClient(server.endpoint, "c")
    original = server.handle
    server.handle = lambda payload: original(payload).replace(b"\xa1v\x01", b"\xa1v\x02", 1)
    with pytest.raises(RpcError) as info:
        client.call("echo", value=1)
    assert info.value.code is ErrorCode.version_mismatch
    server.handle = original
    client.close()


def test_timeout_names_endpoint_method_and_timeout_and_the_client_recovers() -> None:
    release = threading.Event()
    methods = {
        **METHODS,
        "wait": (None, lambda: release.wait(10)),
    }
    with RpcServer("slow", LOOPBACK, methods) as srv, RpcClient(srv.endpoint, "c") as c:
        with pytest.raises(RpcTimeout) as info:
            c.request("wait", timeout_s=0.2)
        assert info.value.code is ErrorCode.timeout
        text = str(info.value)
        assert srv.endpoint in text and "'wait'" in text and "0.2 s" in text
        release.set()  # the server answers the old request late: that reply is discarded
        assert c.call("echo", value=11) == 11
        assert c.call("echo", value=12) == 12


def test_timeout_when_nobody_serves_then_a_stale_request_does_not_confuse_the_client() -> None:
    srv = RpcServer("idle", LOOPBACK, METHODS)
    try:
        # answer the handshake only
        helper = threading.Thread(target=srv.serve_once, args=(5000,))
        helper.start()
        c = RpcClient(srv.endpoint, "c")
        helper.join()
        with pytest.raises(RpcTimeout, match="'echo'"):
            c.request("echo", {"value": 1}, timeout_s=0.1)
        srv.start()  # now the server serves, stale request first
        assert c.call("echo", value=2) == 2
        c.close()
    finally:
        srv.stop()


def test_hello_timeout_when_no_server_listens() -> None:
    ctx = zmq.Context.instance()
    probe = ctx.socket(zmq.ROUTER)
    port = probe.bind_to_random_port("tcp://127.0.0.1")
    probe.close(0)  # a free loopback port with nobody behind it
    with pytest.raises(RpcTimeout, match="'hello' within 0.1 s"):
        RpcClient(f"tcp://127.0.0.1:{port}", "c", timeout_s=0.1)


def test_lock_and_unlock(server: RpcServer, client: RpcClient) -> None:
    operator = RpcClient(server.endpoint, "anna")
    script = RpcClient(server.endpoint, "night-calibration")
    try:
        operator.lock()
        assert server.owner == "anna"
        operator.lock()  # idempotent for the holder
        with pytest.raises(RpcError) as info:
            script.call("set_power", channel=0, power_mw=1.0)
        assert info.value.code is ErrorCode.locked
        assert "locked by 'anna'" in str(info.value)
        assert info.value.info.details == {"owner": "anna"}
        health = script.ping()  # ping and hello keep working
        assert health.busy and health.owner == "anna"
        with RpcClient(server.endpoint, "late") as late:
            assert late.server.name == "alice"
        assert operator.call("echo", value=1) == 1
        # while locked, the token is checked before the arguments
        with pytest.raises(RpcError, match="locked by 'anna'"):
            script.call("set_power", channel=99)
        with pytest.raises(RpcError, match="args.channel: got 99") as info:
            operator.call("set_power", channel=99, power_mw=1.0)
        assert info.value.code is ErrorCode.bad_arguments
        with pytest.raises(RpcError, match="already locked by 'anna'"):
            script.lock()
        with pytest.raises(RpcError, match="cannot unlock"):
            script.unlock()
        operator.unlock()
        assert server.owner is None
        assert script.call("echo", value=2) == 2
        # a stale lock can be broken on purpose
        operator.lock()
        script.unlock(force=True)
        assert server.owner is None and script.call("echo", value=3) == 3
        with pytest.raises(RpcError, match="args.owner: missing"):
            script.request("lock", {})
    finally:
        operator.close()
        script.close()


def test_serve_once_single_threaded() -> None:
    srv = RpcServer("manual", LOOPBACK, METHODS)
    try:
        assert srv.serve_once(0) == 0
        dealer = _raw(srv.endpoint)
        for i in range(3):
            dealer.send(
                dumps(
                    {"v": 1, "id": str(i), "type": "call", "method": "echo", "args": {"value": i}}
                )
            )
        handled = 0
        while handled < 3:
            handled += srv.serve_once(1000)
        assert [decode(dealer.recv()).result for _ in range(3)] == [0, 1, 2]
        assert srv.calls == 3
        dealer.close(0)
        srv.start()
        with pytest.raises(RuntimeError, match="background thread"):
            srv.serve_once(0)
    finally:
        srv.stop()
    with pytest.raises(RuntimeError, match="closed"):
        srv.serve_once(0)


def test_serve_forever_until_a_handler_asks_to_stop() -> None:
    srv = RpcServer("forever", LOOPBACK, {"quit": (None, lambda: srv.request_stop()), **METHODS})
    runner = threading.Thread(target=srv.serve_forever)
    runner.start()
    with RpcClient(srv.endpoint, "c") as c:
        assert c.call("echo", value=1) == 1
        c.call("quit")
    runner.join(5)
    assert not runner.is_alive()
    srv.close()


def test_inproc_server_and_client_in_one_process() -> None:
    with (
        RpcServer("inproc-node", "inproc://qnode-test-rpc", METHODS) as srv,
        RpcClient(srv.endpoint, "c") as c,
    ):
        assert c.call("echo", value=9) == 9


def test_constructor_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="'lock' is built in"):
        RpcServer("x", LOOPBACK, {"lock": (None, lambda: None)})
    with pytest.raises(ValueError, match="expected \\(ArgsModel or None, handler\\)"):
        RpcServer("x", LOOPBACK, {"m": lambda: None})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="args model must be a pydantic model"):
        RpcServer("x", LOOPBACK, {"m": (dict, lambda a: None)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="cannot bind 'nonsense://here'"):
        RpcServer("x", "nonsense://here", {})
    with pytest.raises(NotImplementedError, match="CURVE"):
        RpcServer("x", LOOPBACK, {}, security={"curve": "keys"})
    with pytest.raises(ValueError, match="timeout_s"):
        RpcClient("tcp://127.0.0.1:1", "c", timeout_s=0)


@pytest.mark.parametrize("spin_us", [0.0, 200.0, 10_000.0])
def test_the_serving_loop_answers_whether_it_polls_or_blocks(spin_us: float) -> None:
    """After each reply the loop polls for the next request up to ``spin_us``, then blocks:
    requests back to back and after a pause far past the budget are all answered, in
    order, and a pause past the budget leaves the loop blocking until a quick request."""
    with (
        RpcServer("spinner", LOOPBACK, METHODS, spin_us=spin_us) as srv,
        RpcClient(srv.endpoint, "c", timeout_s=5.0) as c,
    ):
        assert [c.call("echo", value=i) for i in range(20)] == list(range(20))
        time.sleep(0.05)  # 50 ms: past any budget here, so the loop stopped polling
        assert c.call("echo", value=20) == 20
        assert not srv._wait.spinning  # that request came after a blocking wait of ~50 ms
        assert [c.call("echo", value=i) for i in range(21, 30)] == list(range(21, 30))
        assert srv.calls == 30


def test_server_spin_budget_is_checked() -> None:
    with pytest.raises(ValueError, match="spin_us -1"):
        RpcServer("x", LOOPBACK, {}, spin_us=-1)
    with pytest.raises(ValueError, match="spin_us 'fast'"):
        RpcServer("x", LOOPBACK, {}, spin_us="fast")  # type: ignore[arg-type]
