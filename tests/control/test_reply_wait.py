"""The client's reply wait: spin for quick replies, block for slow ones, adapt between them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from control.rpc import RpcClient, RpcServer
from control.rpc.reply_wait import MAX_SPIN_US, SpinThenBlock, check_spin_us


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket, zmq.Socket]]:
    ctx = zmq.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    address = f"inproc://reply-wait-{uuid.uuid4().hex}"
    a.bind(address)
    b.connect(address)
    yield a, b
    a.close(0)
    b.close(0)


class _ReplyOnThirdPoll:
    """A socket whose reply is there at the third look (no thread, no timing)."""

    def __init__(self) -> None:
        self.looks = 0

    def getsockopt(self, option: int) -> int:
        self.looks += 1
        return zmq.POLLIN if self.looks >= 3 else 0

    def recv(self, flags: int = 0) -> bytes:
        return b"reply"


def test_a_reply_within_the_budget_is_taken_while_spinning(mocker) -> None:
    mocker.patch.object(time, "perf_counter", return_value=100.0)  # the budget never runs out
    socket = _ReplyOnThirdPoll()
    wait = SpinThenBlock(spin_us=MAX_SPIN_US)
    assert wait.poll(socket) == b"reply"  # type: ignore[arg-type]
    assert socket.looks == 3  # it looked again until the reply came
    assert wait.spinning  # quick replies keep it spinning


def test_a_slow_reply_stops_the_spinning_until_a_quick_one_comes(pair) -> None:
    sender, receiver = pair
    wait = SpinThenBlock(spin_us=300)
    start = time.perf_counter()
    assert wait.poll(receiver) is None  # nobody answers: the spin gives up
    assert time.perf_counter() - start >= 300e-6
    assert not wait.spinning
    sender.send(b"late")
    assert wait.poll(receiver) is None  # not spinning: the caller blocks at once
    assert receiver.recv() == b"late"
    wait.blocked_for(0.050)  # a slow blocking wait keeps it blocking
    assert not wait.spinning
    wait.blocked_for(100e-6)  # a quick one turns the spinning back on
    assert wait.spinning


def test_spin_zero_always_blocks(pair) -> None:
    sender, receiver = pair
    wait = SpinThenBlock(spin_us=0)
    sender.send(b"ready")
    assert not wait.spinning
    assert wait.poll(receiver) is None
    wait.blocked_for(0.0)
    assert not wait.spinning
    assert receiver.recv() == b"ready"


@pytest.mark.parametrize("bad", [-1, MAX_SPIN_US + 1, "200", True, None, float("nan")])
def test_a_bad_spin_is_refused_naming_it(bad) -> None:
    with pytest.raises(ValueError, match="spin_us .*expected"):
        check_spin_us(bad)


def test_the_client_spins_for_quick_calls_and_blocks_for_slow_ones(mocker) -> None:
    """Whether a call was quick is the machine's business; what the client must do with the
    time its blocking wait took is not: it tells its policy, which decides the next call."""
    spy = mocker.spy(SpinThenBlock, "blocked_for")
    methods = {
        "echo": (None, lambda: "ok"),
        "slow": (None, lambda: time.sleep(0.02) or "done"),
    }

    def blocked(client: RpcClient) -> list[Any]:
        """The client's blocking waits (the server's loop, in this process, has its own)."""
        return [call for call in spy.call_args_list if call.args[0] is client._wait]

    def spins_as_its_last_wait_says(client: RpcClient, calls_before: int) -> None:
        waits = blocked(client)
        if len(waits) == calls_before:  # the reply came while spinning
            assert client._wait.spinning
        else:  # it blocked: the next call spins if that wait was within the budget
            waited = waits[-1].args[1]
            assert client._wait.spinning == (waited <= MAX_SPIN_US / 1e6)

    with RpcServer("node", "tcp://127.0.0.1:*", methods) as srv:
        srv.start()
        with RpcClient(srv.endpoint, "c", timeout_s=5.0, spin_us=MAX_SPIN_US) as c:
            before = len(blocked(c))
            assert c.call("echo") == "ok"
            spins_as_its_last_wait_says(c, before)
            before = len(blocked(c))
            assert c.call("slow") == "done"  # 20 ms > the 10 ms budget: it blocked
            assert len(blocked(c)) == before + 1
            assert blocked(c)[-1].args[1] >= 0.02
            assert not c._wait.spinning
            before = len(blocked(c))
            assert c.call("echo") == "ok"  # not spinning: it blocks at once
            assert len(blocked(c)) == before + 1
            spins_as_its_last_wait_says(c, before)
        with RpcClient(srv.endpoint, "c0", timeout_s=5.0, spin_us=0) as c:
            assert c.call("echo") == "ok" and not c._wait.spinning
    with pytest.raises(ValueError, match="spin_us -5"):
        RpcClient("tcp://127.0.0.1:1", "c", spin_us=-5)
