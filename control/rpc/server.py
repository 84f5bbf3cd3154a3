"""``RpcServer``: serves a node's methods on one ROUTER socket, one call at a time
(see ``control.rpc`` for the contract)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import zmq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import security as _security
from ..messages import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Call,
    Error,
    ErrorCode,
    ErrorInfo,
    Format,
    HelloResult,
    MessageError,
    call_model,
    decode,
    dumps,
    encode,
    peek,
    validate_call,
)
from ..security import Security
from .reply_wait import SpinThenBlock

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
MethodSpec = tuple[type[BaseModel] | None, Handler]
BUILTIN_METHODS = ("lock", "unlock")
_STOP_POLL_MS = 20  # how often a serving loop checks for a stop request
_SNDMORE = int(zmq.SNDMORE)  # a plain int: pyzmq converts an enum flag on every call


class _LockArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Annotated[str, Field(min_length=1, max_length=64)]


class _UnlockArgs(_LockArgs):
    force: bool = False


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
        security: Security | None = None,
        spin_us: float = 0.0,
    ) -> None:
        """``spin_us``: how long the serving loop polls for the next request after a reply
        before it blocks (0, the default: block at once; ``control.rpc.reply_wait``). Give
        it to a server whose thread has its process to itself: a polling thread holds the
        GIL that other Python threads of its process (an in-process client) wait for."""
        security = _security.check(security)
        self._wait = SpinThenBlock(spin_us)
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
        self._call_models = {m: call_model(m, spec[0]) for m, spec in self.methods.items()}
        # method -> (validator of its call, handler, whether it takes arguments): the
        # shortcut of handle() for the common request
        self._fast = {
            m: (self._call_models[m].__pydantic_validator__.validate_python, h, a is not None)
            for m, (a, h) in self.methods.items()
        }
        self._call_models["lock"] = call_model("lock", _LockArgs)
        self._call_models["unlock"] = call_model("unlock", _UnlockArgs)
        self._hello = HelloResult(
            name=name, version=PROTOCOL_VERSION, methods=[*self.methods, *BUILTIN_METHODS]
        ).model_dump()
        self._ctx = context or zmq.Context.instance()
        self.security = security
        curve = security is not None and not security.plaintext
        # Keys are checked before anything is opened; the authenticator runs before the bind,
        # so no client can connect unauthenticated in between.
        allowed = security.server_keys()[2] if curve else frozenset()  # type: ignore[union-attr]
        self._zap_domain = f"qnode-{name}-{id(self):x}" if curve else None
        self._sock = self._ctx.socket(zmq.ROUTER)
        try:
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.setsockopt(zmq.MAXMSGSIZE, 4 * max_message_bytes)
            if self._zap_domain is not None:
                _security.attach_authenticator(self._ctx, self._zap_domain, allowed, name)
                security.apply_server(self._sock, self._zap_domain)  # type: ignore[union-attr]
            self._sock.bind(endpoint)
        except BaseException as exc:
            self._sock.close(0)
            if self._zap_domain is not None:
                _security.detach_authenticator(self._ctx, self._zap_domain)
            if isinstance(exc, zmq.ZMQError):
                raise ValueError(f"RpcServer {name!r}: cannot bind {endpoint!r}: {exc}") from None
            raise
        last = self._sock.getsockopt(zmq.LAST_ENDPOINT)
        self.endpoint: str = last.decode() if last else endpoint
        self._rcvtimeo = -2
        self._thread: threading.Thread | None = None
        self._stopping = False
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
        # Shortcut for the common request, a msgpack call of a served method while the node
        # is unlocked: the same validation (the method's call model) in fewer steps. Anything
        # else, or anything failing validation, takes the general path, which answers it.
        fields = peek(payload, "call", self.max_message_bytes) if self._owner is None else None
        if fields is not None:
            method = fields.get("method")
            fast = self._fast.get(method) if type(method) is str else None
            if fast is not None:
                try:
                    msg = fast[0](fields)
                except ValidationError:
                    pass
                else:
                    return self._invoke(msg, fast[1], fast[2], "msgpack")
        return self._handle(payload)

    def _handle(self, payload: bytes) -> bytes:
        fmt = _reply_format(payload)
        try:
            # While the node is locked, the owner token is checked before the arguments.
            typed = self._call_models if self._owner is None else None
            msg = decode(payload, self.max_message_bytes, typed)
        except MessageError as exc:
            log.debug("%s: refused a message: %s", self.name, exc)
            return self._error(exc.request_id, exc.code, str(exc), fmt, exc.details)
        try:
            kind = msg.type
            if kind == "call":
                return self._call(msg, fmt)  # type: ignore[arg-type]
            if kind == "ping":
                return self._ok(msg.id, self.ping_result(), fmt)
            if kind == "hello":
                if msg.version != PROTOCOL_VERSION:  # type: ignore[union-attr]
                    return self._error(
                        msg.id,
                        ErrorCode.version_mismatch,
                        f"client {msg.name!r} speaks protocol version {msg.version}; "  # type: ignore[union-attr]
                        f"server {self.name!r} speaks version {PROTOCOL_VERSION}",
                        fmt,
                    )
                return self._ok(msg.id, self._hello, fmt)
            return self._error(
                msg.id,
                ErrorCode.bad_message,
                f"field 'type': got {kind!r}; a server accepts 'hello', 'ping' and 'call'",
                fmt,
            )
        except Exception as exc:  # defensive: a server must not die on one request
            log.exception("%s: internal error", self.name)
            return self._error(
                msg.id, ErrorCode.failed, f"internal error: {type(exc).__name__}: {exc}", fmt
            )

    def _ok(self, rid: str, result: Any, fmt: Format) -> bytes:
        # The wire shape of messages.Ok, packed without building the model.
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
        spec = self.methods.get(method)
        if method not in BUILTIN_METHODS:
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
            if spec is None:
                return self._error(
                    msg.id,
                    ErrorCode.unknown_method,
                    f"node {self.name!r} has no method {method!r}; it serves "
                    f"{sorted([*self.methods, *BUILTIN_METHODS])}",
                    fmt,
                )
        if type(msg) is Call:  # decoded without the method's args model (node locked)
            try:
                msg = validate_call(msg.__dict__, self._call_models[method])
            except MessageError as exc:
                return self._error(msg.id, exc.code, str(exc), fmt, exc.details)
        if spec is None:
            return self._lock_call(msg, fmt)
        return self._invoke(msg, spec[1], spec[0] is not None, fmt)

    def _invoke(self, msg: Call, handler: Handler, takes_args: bool, fmt: Format) -> bytes:
        """Run the handler of a validated call and encode its reply."""
        method = msg.method
        self.calls += 1
        try:
            # msg.args is already an instance of the method's args model (call_models)
            result = handler(msg.args) if takes_args else handler()
        except Exception as exc:
            log.exception("%s: handler %r raised", self.name, method)
            return self._error(
                msg.id,
                ErrorCode.failed,
                f"{method} raised {type(exc).__name__}: {exc}",
                fmt,
                {"exception": type(exc).__name__},
            )
        try:
            return self._ok(msg.id, result, fmt)
        except MessageError as exc:
            log.error("%s: result of %r not sendable: %s", self.name, method, exc)
            return self._error(
                msg.id, ErrorCode.failed, f"{method} returned an unsendable result: {exc}", fmt
            )

    def _lock_call(self, msg: Call, fmt: Format) -> bytes:
        args = msg.args
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
        assert isinstance(args, _LockArgs)
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

    def _set_rcvtimeo(self, timeout_ms: int) -> None:
        if timeout_ms != self._rcvtimeo:
            self._sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
            self._rcvtimeo = timeout_ms

    def _serve_one(self, ident: bytes | None = None) -> None:
        """Receive one request (blocking up to RCVTIMEO, raising zmq.Again; or the rest of
        the one whose first frame ``ident`` was received) and answer it. Plain recv/send
        calls: a DEALER request arrives as [identity, payload], a REQ one as [identity, b"",
        payload]; the envelope goes back unchanged."""
        sock = self._sock
        if ident is None:
            ident = sock.recv()  # blocks without the GIL
        payload = sock.recv()  # a ROUTER message always has a part after the identity
        if not sock.getsockopt(zmq.RCVMORE):
            reply = self.handle(payload)
            sock.send(ident, _SNDMORE)
            sock.send(reply)
            return
        envelope = [ident, payload]
        while sock.getsockopt(zmq.RCVMORE):
            envelope.append(sock.recv())
        reply = self.handle(envelope.pop())
        for frame in envelope:
            sock.send(frame, zmq.SNDMORE)
        sock.send(reply)

    def serve_once(self, timeout_ms: int = 0) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for a request and answer every request
        waiting; returns how many were answered. Single-threaded use (not with ``start()``)."""
        self._check_idle("serve_once()")
        self._set_rcvtimeo(timeout_ms)
        try:
            self._serve_one()
        except zmq.Again:
            return 0
        handled = 1
        while self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._serve_one()
            handled += 1
        return handled

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``request_stop()`` (e.g. from a handler, a signal
        handler or another thread); the socket stays open (``close()`` it)."""
        self._check_idle("serve_forever()")
        self._stopping = False
        self._loop()

    def _loop(self) -> None:
        """Serve until stopped: after each reply, poll for the next request for up to the
        spin budget, then block (waking a sleeping thread costs tens of microseconds of
        every round trip; ``control.rpc.reply_wait``)."""
        self._set_rcvtimeo(_STOP_POLL_MS)
        serve_one, wait, clock = self._serve_one, self._wait, time.perf_counter
        replied = clock()
        while not self._stopping:
            try:
                ident = wait.poll(self._sock)
                if ident is None:
                    ident = self._sock.recv()  # blocks without the GIL, up to RCVTIMEO
                    wait.blocked_for(clock() - replied)
                serve_one(ident)
                replied = clock()
            except zmq.Again:
                continue
            except zmq.ZMQError as exc:
                if not self._stopping:
                    log.error("%s: socket error, serving ends: %s", self.name, exc)
                return

    def _check_idle(self, what: str) -> None:
        if self._closed:
            raise RuntimeError(f"{what}: RpcServer {self.name!r} is closed")
        if self._thread is not None:
            raise RuntimeError(f"{what}: the background thread is serving")

    def start(self) -> RpcServer:
        """Serve in a background thread until ``stop()``."""
        if self._thread is None:
            self._check_idle("start()")
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name=f"rpc-{self.name}", daemon=True)
            self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask ``serve_forever()`` or the background thread to return (within ~20 ms)."""
        self._stopping = True

    def stop(self) -> None:
        """Stop the background thread (if running) and close the socket."""
        self._stopping = True
        thread = self._thread
        if thread is not None:
            if thread is threading.current_thread():
                return  # called from a handler: the thread ends after this request
            thread.join()
            self._thread = None
        self.close()

    def close(self) -> None:
        """Close the socket (after the background thread, if any, has stopped)."""
        if not self._closed and self._thread is None:
            self._closed = True
            self._sock.close(0)
            if self._zap_domain is not None:
                _security.detach_authenticator(self._ctx, self._zap_domain)

    def __enter__(self) -> RpcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
