"""Request/reply between node controllers and the orchestrator, over ZeroMQ.

``RpcServer`` runs on each node controller and serves named methods; ``RpcClient`` is the
orchestrator's (or an operator script's) handle on one node. Messages are the validated,
versioned models of ``control.messages`` (msgpack by default, JSON accepted).

Server
------
``RpcServer(name, endpoint, methods)``: ``methods`` maps a method name to
``(ArgsModel, handler)``. The ``args`` map of a call is validated by ``ArgsModel`` (a pydantic
model) and the handler is called with the model instance; with ``ArgsModel=None`` the method
takes no arguments and the handler is called with none. A handler returns JSON-compatible
data or a pydantic model (dumped in JSON mode; numpy scalars and arrays are converted too).

* **One call at a time.** The server owns one ROUTER socket and handles requests one after
  the other on one thread (its background thread after ``start()``, or the caller's thread
  in ``serve_once``). Calls to one node's instruments are therefore serialised by
  construction: handlers need no locks against each other. A slow handler delays the
  replies to everything behind it, pings included - keep handlers short and run long
  experiments elsewhere (set ``server.busy`` meanwhile; pings report it).
* **Never crashes on input.** Undecodable, oversized, ill-typed or unknown messages get an
  ``error`` reply (``bad_message``; request id ``""`` if it could not be read). A handler that
  raises produces a ``failed`` reply naming the exception type and message (and is logged);
  the server keeps serving. Frames larger than 4x ``max_message_bytes`` are dropped by
  ZeroMQ itself (``MAXMSGSIZE``, tcp/ipc only), which disconnects that peer.
* **Ownership lock.** Built-in methods ``lock(owner)`` and ``unlock(owner, force=False)``.
  While a node is locked, every ``call`` that does not carry the owner's token (``owner``
  field of the message) is refused with a ``locked`` error naming the owner; ``ping`` and
  ``hello`` keep working. An operator takes the lock so that, say, a night-time calibration
  script cannot disturb a running measurement. ``lock`` by the holder is a no-op, by anyone
  else refused; ``unlock`` needs the token, or ``force=True`` to break a stale lock (logged).

Client
------
``RpcClient(endpoint, name, timeout_s=2.0)`` connects a DEALER socket and performs the
``hello`` handshake (a protocol version mismatch raises ``RpcError``). ``call(method, **args)``
returns the result or raises ``RpcError`` carrying the server's ``ErrorInfo``. Every request
has a finite timeout (``request(..., timeout_s=...)`` overrides it per call); on timeout
``RpcTimeout`` names endpoint, method and timeout, and the socket is recreated, so requests
still queued for an absent server are dropped rather than executed late, and the client stays
usable. Replies are matched by request id; stale ones are discarded.

A client is **not thread-safe**: use one client per thread (they are cheap).

Security: ``security=`` is reserved for CURVE encryption/authentication (a later issue); any
value other than ``None`` raises ``NotImplementedError`` today.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import zmq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .messages import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Call,
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
    decode,
    describe_validation_error,
    dumps,
    encode,
)

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
MethodSpec = tuple[type[BaseModel] | None, Handler]
BUILTIN_METHODS = ("lock", "unlock")


class RpcError(Exception):
    """A request failed; ``info`` is the structured ``ErrorInfo`` (``code``, ``message``)."""

    def __init__(self, info: ErrorInfo, endpoint: str = "", method: str = "") -> None:
        self.info = info
        self.endpoint = endpoint
        self.method = method
        where = f"{endpoint} {method}: " if endpoint or method else ""
        super().__init__(f"{where}{info.code.value}: {info.message}")

    @property
    def code(self) -> ErrorCode:
        return self.info.code


class RpcTimeout(RpcError):  # noqa: N818 - the name the API promises
    """No reply within the timeout. The client remains usable."""


class _LockArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Annotated[str, Field(min_length=1, max_length=64)]


class _UnlockArgs(_LockArgs):
    force: bool = False


def _check_security(security: object | None) -> None:
    # The one place CURVE keys will be applied to a socket (server or client side).
    if security is not None:
        raise NotImplementedError("security (CURVE encryption) is not implemented yet")


def _reply_format(payload: bytes) -> Format:
    return "json" if payload[:1] in (b"{", b" ", b"\t", b"\r", b"\n") else "msgpack"


class RpcServer:
    """Serves ``methods`` on ``endpoint`` (bound at construction; ``.endpoint`` is resolved,
    e.g. ``tcp://127.0.0.1:*`` becomes the actual port)."""

    def __init__(
        self,
        name: str,
        endpoint: str,
        methods: Mapping[str, MethodSpec],
        *,
        backend: Literal["simulated", "lab"] = "simulated",
        context: zmq.Context | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        security: object | None = None,
    ) -> None:
        _check_security(security)
        if not name or len(name) > 128:
            raise ValueError(f"name {name!r}: expected 1 to 128 characters")
        if backend not in ("simulated", "lab"):
            raise ValueError(f"backend {backend!r}: expected 'simulated' or 'lab'")
        self.methods: dict[str, MethodSpec] = {}
        for method, spec in methods.items():
            if method in BUILTIN_METHODS:
                raise ValueError(f"method {method!r} is built in (lock/unlock); rename it")
            if not isinstance(spec, tuple) or len(spec) != 2 or not callable(spec[1]):
                raise ValueError(f"method {method!r}: expected (ArgsModel or None, handler)")
            model = spec[0]
            if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise ValueError(f"method {method!r}: args model must be a pydantic model")
            self.methods[method] = spec
        self.name = name
        self.backend = backend
        self.max_message_bytes = max_message_bytes
        self.busy = False  # set by the application while it runs something long
        self.calls = 0
        self._owner: str | None = None
        self._started = time.monotonic()
        self._hello = HelloResult(
            name=name, version=PROTOCOL_VERSION, methods=[*self.methods, *BUILTIN_METHODS]
        ).model_dump()
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, 4 * max_message_bytes)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise ValueError(f"RpcServer {name!r}: cannot bind {endpoint!r}: {exc}") from None
        last = self._sock.getsockopt(zmq.LAST_ENDPOINT)
        self.endpoint: str = last.decode() if last else endpoint
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    # --- state -------------------------------------------------------------------------------

    @property
    def owner(self) -> str | None:
        """The holder of the ownership lock, or None."""
        return self._owner

    def ping_result(self) -> dict[str, Any]:
        return {
            "node": self.name,
            "version": PROTOCOL_VERSION,
            "uptime_s": time.monotonic() - self._started,
            "backend": self.backend,
            "busy": bool(self.busy or self._owner is not None),
            "owner": self._owner,
            "calls": self.calls,
        }

    # --- request handling (pure: bytes in, bytes out) ----------------------------------------

    def handle(self, payload: bytes) -> bytes:
        """One request's bytes -> the reply's bytes. Never raises on bad input."""
        fmt = _reply_format(payload)
        try:
            msg = decode(payload, self.max_message_bytes)
        except MessageError as exc:
            log.debug("%s: bad message: %s", self.name, exc)
            return self._error(exc.request_id, exc.code, str(exc), fmt, exc.details)
        try:
            if type(msg) is Call:
                return self._call(msg, fmt)
            if type(msg) is Ping:
                return self._ok(msg.id, self.ping_result(), fmt)
            if type(msg) is Hello:
                if msg.version != PROTOCOL_VERSION:
                    return self._error(
                        msg.id,
                        ErrorCode.version_mismatch,
                        f"client {msg.name!r} speaks protocol version {msg.version}; server "
                        f"{self.name!r} speaks version {PROTOCOL_VERSION}",
                        fmt,
                    )
                return self._ok(msg.id, self._hello, fmt)
            return self._error(
                msg.id,
                ErrorCode.bad_message,
                f"field 'type': got {msg.type!r}; a server accepts 'hello', 'ping', 'call'",
                fmt,
            )
        except Exception as exc:  # defensive: a server must not die on one request
            log.exception("%s: internal error", self.name)
            return self._error(
                msg.id, ErrorCode.failed, f"internal error: {type(exc).__name__}: {exc}", fmt
            )

    def _ok(self, rid: str, result: Any, fmt: Format) -> bytes:
        # Same wire shape as messages.Ok, without building the model.
        return dumps(
            {"v": PROTOCOL_VERSION, "id": rid, "type": "ok", "result": result},
            fmt,
            self.max_message_bytes,
        )

    def _error(
        self,
        rid: str | None,
        code: ErrorCode,
        message: str,
        fmt: Format,
        details: dict[str, Any] | None = None,
    ) -> bytes:
        reply = Error(id=rid or "", error=ErrorInfo(code=code, message=message, details=details))
        try:
            return encode(reply, fmt, self.max_message_bytes)
        except MessageError:  # details too large or odd: drop them
            reply = Error(id=rid or "", error=ErrorInfo(code=code, message=message[:2000]))
            return encode(reply, fmt)

    def _call(self, msg: Call, fmt: Format) -> bytes:
        method = msg.method
        if method in BUILTIN_METHODS:
            return self._lock_call(msg, fmt)
        owner = self._owner
        if owner is not None and msg.owner != owner:
            return self._error(
                msg.id,
                ErrorCode.locked,
                f"node {self.name!r} is locked by {owner!r}; call {method!r} refused "
                "(send the owner's token, or wait for unlock)",
                fmt,
                {"owner": owner},
            )
        spec = self.methods.get(method)
        if spec is None:
            return self._error(
                msg.id,
                ErrorCode.unknown_method,
                f"node {self.name!r} has no method {method!r}; it serves "
                f"{sorted([*self.methods, *BUILTIN_METHODS])}",
                fmt,
            )
        model, handler = spec
        try:
            if model is None:
                if msg.args:
                    return self._error(
                        msg.id,
                        ErrorCode.bad_arguments,
                        f"{method}: takes no arguments; got {sorted(msg.args)}",
                        fmt,
                    )
                result = handler()
            else:
                try:
                    args = model.model_validate(msg.args)
                except ValidationError as exc:
                    text, problems = describe_validation_error(exc, prefix="args")
                    return self._error(
                        msg.id,
                        ErrorCode.bad_arguments,
                        f"{method}: {text}",
                        fmt,
                        {"errors": problems},
                    )
                result = handler(args)
        except Exception as exc:
            log.exception("%s: handler %r raised", self.name, method)
            return self._error(
                msg.id,
                ErrorCode.failed,
                f"{method} raised {type(exc).__name__}: {exc}",
                fmt,
                {"exception": type(exc).__name__},
            )
        finally:
            self.calls += 1
        try:
            return self._ok(msg.id, result, fmt)
        except MessageError as exc:
            log.error("%s: result of %r not sendable: %s", self.name, method, exc)
            return self._error(
                msg.id, ErrorCode.failed, f"{method} returned an unsendable result: {exc}", fmt
            )

    def _lock_call(self, msg: Call, fmt: Format) -> bytes:
        model = _LockArgs if msg.method == "lock" else _UnlockArgs
        try:
            args = model.model_validate(msg.args)
        except ValidationError as exc:
            text, problems = describe_validation_error(exc, prefix="args")
            return self._error(
                msg.id, ErrorCode.bad_arguments, f"{msg.method}: {text}", fmt, {"errors": problems}
            )
        holder = self._owner
        if isinstance(args, _UnlockArgs):
            if holder is not None and holder != args.owner:
                if not args.force:
                    return self._error(
                        msg.id,
                        ErrorCode.locked,
                        f"node {self.name!r} is locked by {holder!r}; {args.owner!r} cannot "
                        "unlock it (force=True breaks a stale lock)",
                        fmt,
                        {"owner": holder},
                    )
                log.warning("%s: lock of %r broken by %r", self.name, holder, args.owner)
            self._owner = None
            return self._ok(msg.id, {"locked": False, "owner": None}, fmt)
        if holder is not None and holder != args.owner:
            return self._error(
                msg.id,
                ErrorCode.locked,
                f"node {self.name!r} is already locked by {holder!r}",
                fmt,
                {"owner": holder},
            )
        self._owner = args.owner
        log.info("%s: locked by %r", self.name, args.owner)
        return self._ok(msg.id, {"locked": True, "owner": args.owner}, fmt)

    # --- serving -----------------------------------------------------------------------------

    def _drain(self) -> int:
        sock = self._sock
        handled = 0
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return handled
            frames[-1] = self.handle(frames[-1])  # envelope (identity, maybe b"") is kept
            sock.send_multipart(frames)
            handled += 1

    def serve_once(self, timeout_ms: int = 0) -> int:
        """Wait up to ``timeout_ms`` for requests and answer all that are waiting; returns how
        many were handled. For single-threaded use (not while the thread runs)."""
        if self._thread is not None:
            raise RuntimeError("serve_once() while the background thread is serving")
        if self._closed:
            raise RuntimeError(f"RpcServer {self.name!r} is closed")
        if not self._poller.poll(timeout_ms):
            return 0
        return self._drain()

    def _run(self) -> None:
        sock = self._sock
        sock.setsockopt(zmq.RCVTIMEO, 20)
        while not self._stop.is_set():
            try:
                frames = sock.recv_multipart()
            except zmq.Again:
                continue
            except zmq.ZMQError as exc:
                if not self._stop.is_set():
                    log.error("%s: socket error, server thread ends: %s", self.name, exc)
                return
            try:
                frames[-1] = self.handle(frames[-1])
                sock.send_multipart(frames)
            except Exception:  # pragma: no cover - handle() does not raise
                log.exception("%s: could not answer a request", self.name)

    def start(self) -> RpcServer:
        """Serve in a background thread until ``stop()``."""
        if self._closed:
            raise RuntimeError(f"RpcServer {self.name!r} is closed")
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"rpc-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background thread (if running) and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.close()

    def close(self) -> None:
        if not self._closed and self._thread is None:
            self._closed = True
            self._sock.close(0)

    def __enter__(self) -> RpcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_UNSET: Any = object()


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
        security: object | None = None,
    ) -> None:
        _check_security(security)
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

    def _roundtrip(self, payload: bytes, rid: str, what: str, timeout_s: float) -> Ok | Error:
        sock = self._sock
        if sock is None:
            raise RuntimeError(f"RpcClient for {self.endpoint} is closed")
        deadline = time.monotonic() + timeout_s
        try:
            sock.send(payload, zmq.NOBLOCK)
        except zmq.Again:
            self._reset()
            raise self._timeout(what, timeout_s, "send queue full") from None
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000.0 + 0.999)
            if remaining_ms <= 0:
                self._reset()
                raise self._timeout(what, timeout_s)
            if remaining_ms != self._rcvtimeo:
                sock.setsockopt(zmq.RCVTIMEO, remaining_ms)
                self._rcvtimeo = remaining_ms
            try:
                data = sock.recv()
            except zmq.Again:
                self._reset()
                raise self._timeout(what, timeout_s) from None
            try:
                reply = decode(data, self.max_message_bytes)
            except MessageError as exc:
                raise RpcError(
                    ErrorInfo(code=ErrorCode.bad_message, message=f"undecodable reply: {exc}"),
                    self.endpoint,
                    what,
                ) from None
            if reply.id == rid or (reply.id == "" and type(reply) is Error):
                # id "" is the server's answer to a request it could not read; after a
                # timeout the socket is recreated, so it can only concern this request.
                if type(reply) is Ok or type(reply) is Error:
                    return reply
                raise RpcError(
                    ErrorInfo(
                        code=ErrorCode.bad_message,
                        message=f"reply of type {reply.type!r}; expected 'ok' or 'error'",
                    ),
                    self.endpoint,
                    what,
                )
            log.debug("%s: discarding stale reply %r", self.endpoint, reply.id)

    def _timeout(self, what: str, timeout_s: float, why: str = "") -> RpcTimeout:
        return RpcTimeout(
            ErrorInfo(
                code=ErrorCode.timeout,
                message=f"no reply from {self.endpoint} to {what!r} within {timeout_s:g} s"
                + (f" ({why})" if why else ""),
                details={"endpoint": self.endpoint, "method": what, "timeout_s": timeout_s},
            ),
            self.endpoint,
            what,
        )

    def _next_id(self) -> str:
        self._seq += 1
        return f"{self._seq:x}"

    def _send(self, msg: Hello | Ping | Call, what: str, timeout_s: float | None) -> Any:
        try:
            payload = encode(msg, self.fmt, self.max_message_bytes)
        except MessageError as exc:
            raise RpcError(
                ErrorInfo(code=ErrorCode.bad_message, message=str(exc)), self.endpoint, what
            ) from None
        reply = self._roundtrip(
            payload, msg.id, what, self.timeout_s if timeout_s is None else timeout_s
        )
        if type(reply) is Error:
            raise RpcError(reply.error, self.endpoint, what)
        return reply.result

    def request(
        self,
        method: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        owner: str | None = _UNSET,
    ) -> Any:
        """Call ``method`` with ``args``; per-call ``timeout_s`` and ``owner`` token."""
        try:
            msg = Call(
                id=self._next_id(),
                method=method,
                args=dict(args) if args else {},
                owner=self.owner if owner is _UNSET else owner,
            )
        except ValidationError as exc:
            text, _ = describe_validation_error(exc)
            raise RpcError(
                ErrorInfo(code=ErrorCode.bad_message, message=text), self.endpoint, str(method)
            ) from None
        return self._send(msg, method, timeout_s)

    def call(self, method: str, /, **args: Any) -> Any:
        """Call ``method(**args)`` on the node with the default timeout; returns the result."""
        return self.request(method, args)

    def hello(self, timeout_s: float | None = None) -> HelloResult:
        """The handshake (done on construction): the server's name, version and methods."""
        result = self._send(
            Hello(id=self._next_id(), name=self.name, version=PROTOCOL_VERSION), "hello", timeout_s
        )
        try:
            info = HelloResult.model_validate(result)
        except ValidationError as exc:
            raise RpcError(
                ErrorInfo(code=ErrorCode.bad_message, message=f"bad hello result: {exc}"),
                self.endpoint,
                "hello",
            ) from None
        if info.version != PROTOCOL_VERSION:
            raise RpcError(
                ErrorInfo(
                    code=ErrorCode.version_mismatch,
                    message=f"server {info.name!r} speaks protocol version {info.version}; "
                    f"this client speaks version {PROTOCOL_VERSION}",
                ),
                self.endpoint,
                "hello",
            )
        return info

    def ping(self, timeout_s: float | None = None) -> PingResult:
        """Health of the node: name, uptime, backend, busy and lock owner."""
        result = self._send(Ping(id=self._next_id()), "ping", timeout_s)
        try:
            return PingResult.model_validate(result)
        except ValidationError as exc:
            raise RpcError(
                ErrorInfo(code=ErrorCode.bad_message, message=f"bad ping result: {exc}"),
                self.endpoint,
                "ping",
            ) from None

    def lock(self, owner: str | None = None) -> None:
        """Take the node's ownership lock; later calls of this client carry the token."""
        token = owner or self.owner or self.name
        self.request("lock", {"owner": token}, owner=token)
        self.owner = token

    def unlock(self, *, force: bool = False) -> None:
        """Release the lock this client holds (``force`` breaks anyone's lock)."""
        token = self.owner or self.name
        self.request("unlock", {"owner": token, "force": force})
        self.owner = None
