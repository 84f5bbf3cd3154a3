"""``RpcClient``: the orchestrator's handle on one node (see ``control.rpc``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import zmq
from pydantic import ValidationError

from .. import security as _security
from ..messages import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Error,
    ErrorCode,
    ErrorInfo,
    Format,
    Hello,
    HelloResult,
    MessageError,
    Ok,
    Ping,
    PingResult,
    decode_reply,
    dumps,
    encode,
)
from ..security import Security
from .errors import RpcError, RpcTimeout
from .reply_wait import SpinThenBlock

log = logging.getLogger(__name__)


_UNSET: Any = object()
_NOBLOCK = int(zmq.NOBLOCK)  # a plain int: pyzmq converts an enum flag on every call


class RpcClient:
    """A connection to one node's ``RpcServer``. Not thread-safe: one client per thread."""

    def __init__(
        self,
        endpoint: str,
        name: str,
        timeout_s: float = 2.0,
        *,
        owner: str | None = None,
        fmt: Format = "msgpack",
        context: zmq.Context | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        security: Security | None = None,
        spin_us: float = 200.0,
    ) -> None:
        """``spin_us``: how long a request polls for its reply before it blocks (0: block at
        once); see ``control.rpc.reply_wait``."""
        security = _security.check(security)
        if security is not None and not security.plaintext:
            security.client_keys()  # a missing key file fails here, not at the first request
        if not timeout_s > 0:
            raise ValueError(f"timeout_s {timeout_s!r}: expected a positive number of seconds")
        if fmt not in ("msgpack", "json"):
            raise ValueError(f"fmt {fmt!r}: expected 'msgpack' or 'json'")
        self.endpoint = endpoint
        self.name = name
        self.timeout_s = float(timeout_s)
        self.owner = owner
        self.fmt: Format = fmt
        self.max_message_bytes = max_message_bytes
        self.security = security
        self._wait = SpinThenBlock(spin_us)
        self._ctx = context or zmq.Context.instance()
        self._seq = 0
        self._sock: zmq.Socket | None = None
        self._rcvtimeo = -2
        self._connect()
        try:
            self.server: HelloResult = self.hello()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            if self.security is not None and not self.security.plaintext:
                self.security.apply_client(sock)
            sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise ValueError(f"RpcClient: cannot connect to {self.endpoint!r}: {exc}") from None
        self._sock = sock
        self._rcvtimeo = -2

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
        self._connect()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests ----------------------------------------------------------------------------

    def _fail(self, code: ErrorCode, message: str, what: str, **details: Any) -> RpcError:
        kind = RpcTimeout if code is ErrorCode.timeout else RpcError
        info = ErrorInfo(code=code, message=message, details=details or None)
        return kind(info, self.endpoint, what)

    def _roundtrip(self, msg: Hello | Ping | dict[str, Any], what: str, timeout_s: float) -> Any:
        """Send one request and wait for its reply; returns the ``ok`` result."""
        sock = self._sock
        if sock is None:
            raise RuntimeError(f"RpcClient for {self.endpoint} is closed")
        try:
            if isinstance(msg, dict):  # a call, packed directly in the shape of messages.Call
                rid = msg["id"]
                payload = dumps(msg, self.fmt, self.max_message_bytes)
            else:
                rid = msg.id
                payload = encode(msg, self.fmt, self.max_message_bytes)
        except MessageError as exc:
            raise self._fail(ErrorCode.bad_message, str(exc), what) from None
        sent = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        try:
            sock.send(payload, _NOBLOCK)
        except zmq.Again:
            self._reset()
            raise self._timed_out(what, timeout_s, " (send queue full)") from None
        data = self._wait.poll(sock)
        while True:
            if data is None:
                data = self._receive(sock, deadline, what, timeout_s)
                self._wait.blocked_for(time.perf_counter() - sent)
            try:
                reply = decode_reply(data, self.max_message_bytes)
            except MessageError as exc:
                raise self._fail(exc.code, f"unreadable reply: {exc}", what) from None
            kind = type(reply)
            # id "" answers a request the server could not read; since the socket is
            # recreated after every timeout, it can only concern this request.
            if reply.id == rid or (reply.id == "" and kind is Error):
                if kind is Ok:
                    return reply.result  # type: ignore[union-attr]
                if kind is Error:
                    raise RpcError(reply.error, self.endpoint, what)  # type: ignore[union-attr]
                raise self._fail(ErrorCode.bad_message, f"reply of type {reply.type!r}", what)
            log.debug("%s: discarding stale reply %r", self.endpoint, reply.id)
            data = None

    def _receive(self, sock: zmq.Socket, deadline: float, what: str, timeout_s: float) -> bytes:
        """Block for the next message until ``deadline`` (time.monotonic); on timeout the
        socket is recreated, which drops queued requests and late replies with it."""
        remaining_ms = int((deadline - time.monotonic()) * 1000.0 + 0.999)
        if remaining_ms > 0:
            if remaining_ms != self._rcvtimeo:
                sock.setsockopt(zmq.RCVTIMEO, remaining_ms)
                self._rcvtimeo = remaining_ms
            try:
                return sock.recv()  # blocks without the GIL
            except zmq.Again:
                pass
        self._reset()
        raise self._timed_out(what, timeout_s) from None

    def _timed_out(self, what: str, timeout_s: float, why: str = "") -> RpcError:
        message = f"no reply from {self.endpoint} to {what!r} within {timeout_s:g} s{why}"
        if self.security is not None and not self.security.plaintext:
            message += (
                " (CURVE: a server that refuses this client's key, or a wrong server public "
                "key, also looks like this - ZeroMQ sends no reply to an unauthenticated peer)"
            )
        return self._fail(
            ErrorCode.timeout, message, what, endpoint=self.endpoint, timeout_s=timeout_s
        )

    def _next_id(self) -> str:
        self._seq += 1
        return f"{self._seq:x}"

    def request(
        self,
        method: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        owner: str | None = _UNSET,
    ) -> Any:
        """Call ``method`` with ``args``; per-call ``timeout_s`` and ``owner`` token."""
        if not isinstance(method, str) or not 0 < len(method) <= 128:
            raise ValueError(f"method {method!r}: expected a name of 1 to 128 characters")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s {timeout_s!r}: expected a positive number of seconds")
        self._seq = seq = self._seq + 1
        msg = {
            "v": PROTOCOL_VERSION,
            "id": f"{seq:x}",  # as _next_id(), inlined
            "type": "call",
            "method": method,
            "args": {} if args is None else args if type(args) is dict else dict(args),
            "owner": self.owner if owner is _UNSET else owner,
        }
        return self._roundtrip(msg, method, self.timeout_s if timeout_s is None else timeout_s)

    def call(self, method: str, /, **args: Any) -> Any:
        """Call ``method(**args)`` on the node with the default timeout; returns the result."""
        return self.request(method, args)

    def hello(self, timeout_s: float | None = None) -> HelloResult:
        """The handshake (done on construction): the server's name, version and methods."""
        msg = Hello(id=self._next_id(), name=self.name, version=PROTOCOL_VERSION)
        result = self._roundtrip(msg, "hello", timeout_s or self.timeout_s)
        try:
            info = HelloResult.model_validate(result)
        except ValidationError as exc:
            raise self._fail(ErrorCode.bad_message, f"bad hello result: {exc}", "hello") from None
        if info.version != PROTOCOL_VERSION:
            raise self._fail(
                ErrorCode.version_mismatch,
                f"server {info.name!r} speaks protocol version {info.version}; "
                f"this client speaks version {PROTOCOL_VERSION}",
                "hello",
            )
        return info

    def ping(self, timeout_s: float | None = None) -> PingResult:
        """Health of the node: name, uptime, backend, busy and lock owner."""
        result = self._roundtrip(Ping(id=self._next_id()), "ping", timeout_s or self.timeout_s)
        try:
            return PingResult.model_validate(result)
        except ValidationError as exc:
            raise self._fail(ErrorCode.bad_message, f"bad ping result: {exc}", "ping") from None

    def lock(self, owner: str | None = None) -> None:
        """Take the node's ownership lock; later calls of this client carry the token."""
        token = owner or self.owner or self.name
        self.request("lock", {"owner": token}, owner=token)
        self.owner = token

    def unlock(self, *, force: bool = False) -> None:
        """Release the lock this client holds (``force`` breaks anyone's lock)."""
        self.request("unlock", {"owner": self.owner or self.name, "force": force})
        self.owner = None
