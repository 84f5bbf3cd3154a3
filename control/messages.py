"""Versioned, validated messages between node controllers and the orchestrator.

Every message is a map with ``v`` (protocol version), ``id`` (request id, a short string)
and ``type``, which selects the model:

requests   ``hello``  handshake: client ``name`` and ``version``; the ``ok`` reply carries a
                      ``HelloResult`` (server name, version, the methods it serves).
           ``ping``   health; the ``ok`` reply carries a ``PingResult`` (node, uptime,
                      simulated/lab backend, ``busy``, lock ``owner``).
           ``call``   ``method``, ``args`` (a JSON-compatible map), optional ``owner`` token.
replies    ``ok``     ``result`` (JSON-compatible).
           ``error``  ``error``: an ``ErrorInfo`` (``code``, ``message``, optional ``details``).

The wire format (msgpack or JSON, recognised from the first byte; a size limit on the raw
bytes) is ``control.wire_codec``'s. Every decoding problem - garbage, truncated, oversized,
wrong types, unknown message type, other protocol version - raises one exception type,
``MessageError``, whose text says what was wrong; it carries an ``ErrorCode`` and, when it
could be read, the request id, so a server can still answer with an error reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

# the codec's names that are part of this module's interface (messages are what its users
# import; the codec is how they travel)
from .wire_codec import (
    MAX_MESSAGE_BYTES,
    MSGPACK_MAP,
    ErrorCode,
    Format,
    MessageError,
    detect_format,
    dumps,
    encoder,
    loads,
    short_repr,
    unpack,
    unpack_msgpack,
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "Call",
    "Error",
    "ErrorCode",
    "ErrorInfo",
    "Format",
    "Hello",
    "HelloResult",
    "Message",
    "MessageError",
    "NoArgs",
    "Ok",
    "Ping",
    "PingResult",
    "Reply",
    "Request",
    "call_model",
    "decode",
    "decode_reply",
    "describe_validation_error",
    "detect_format",
    "dumps",
    "encode",
    "encoder",
    "error_reply",
    "loads",
    "peek",
    "validate_call",
]

PROTOCOL_VERSION = 1

ShortStr = Annotated[str, Field(max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=128)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Message(_Model):
    v: int = PROTOCOL_VERSION
    id: ShortStr


class ErrorInfo(_Model):
    """A structured error: ``code``, a message naming field/value/expectation, details."""

    code: Annotated[ErrorCode, Field(strict=False)]
    message: str
    details: dict[str, Any] | None = None


class Hello(_Message):
    type: Literal["hello"] = "hello"
    name: Name
    version: int = PROTOCOL_VERSION


class Ping(_Message):
    type: Literal["ping"] = "ping"


class Call(_Message):
    type: Literal["call"] = "call"
    method: Name
    args: dict[str, Any] = Field(default_factory=dict)
    owner: ShortStr | None = None


class Ok(_Message):
    type: Literal["ok"] = "ok"
    result: Any = None


class Error(_Message):
    type: Literal["error"] = "error"
    error: ErrorInfo


Request = Hello | Ping | Call
Reply = Ok | Error
Message = Request | Reply


class HelloResult(_Model):
    """The ``result`` of an ``ok`` reply to ``hello``."""

    name: Name
    version: int
    methods: list[str]


class PingResult(_Model):
    """The ``result`` of an ``ok`` reply to ``ping``."""

    node: Name
    version: int
    uptime_s: float
    backend: Literal["simulated", "lab"]
    busy: bool  # locked by an owner, or marked busy by the application
    owner: str | None = None  # who holds the lock, if anyone
    calls: int = 0  # calls served since start


_MODELS: dict[str, type[_Message]] = {
    "hello": Hello,
    "ping": Ping,
    "call": Call,
    "ok": Ok,
    "error": Error,
}


def encode(msg: _Message, fmt: Format = "msgpack", max_size: int = MAX_MESSAGE_BYTES) -> bytes:
    """A message model -> wire bytes (msgpack by default, or JSON)."""
    if fmt not in ("msgpack", "json"):
        raise MessageError(f"format {fmt!r}: expected 'msgpack' or 'json'")
    # A pydantic model's __dict__ holds exactly its field values: no dump, no copy; nested
    # models (ErrorInfo, results) go through _default.
    return dumps(msg.__dict__, fmt, max_size)


def describe_validation_error(exc: ValidationError, prefix: str = "") -> tuple[str, list[dict]]:
    """A pydantic ValidationError as one readable line naming field, value and expectation,
    plus a JSON-compatible list of the individual problems."""
    problems = []
    parts = []
    for err in exc.errors(include_url=False, include_context=False):
        field = ".".join(str(p) for p in (*((prefix,) if prefix else ()), *err["loc"]))
        field = field or "(message)"
        value = err.get("input")
        expected = err["msg"]
        if err["type"] == "missing":
            parts.append(f"{field}: missing (required)")
        elif err["type"] == "extra_forbidden":
            parts.append(f"{field}: unexpected field (value {short_repr(value)})")
        else:
            parts.append(f"{field}: got {short_repr(value)} ({type(value).__name__}); {expected}")
        problem: dict[str, Any] = {"field": field, "expected": expected, "type": err["type"]}
        if err["type"] != "missing":
            plain = isinstance(value, int | float | bool | None) or (
                isinstance(value, str) and len(value) <= 200
            )
            problem["value"] = value if plain else short_repr(value, 200)
        problems.append(problem)
    return "; ".join(parts), problems


class NoArgs(_Model):
    """The arguments of a method that takes none."""


def call_model(method: str, args_model: type[BaseModel] | None) -> type[Call]:
    """A ``Call`` whose ``args`` are validated by ``args_model`` (``None``: no arguments) in
    the same pass as the message itself - one validation per request instead of two."""
    return create_model(
        f"Call_{method}",
        __base__=Call,
        args=(args_model or NoArgs, Field(default_factory=dict, validate_default=True)),
    )


def decode(
    data: bytes,
    max_size: int = MAX_MESSAGE_BYTES,
    call_models: Mapping[str, type[Call]] | None = None,
) -> Message:
    """Wire bytes -> a validated message model. Raises MessageError, and nothing else.

    With ``call_models`` (method name -> ``call_model(...)``), a ``call`` of a listed method
    has its ``args`` validated into that method's model; if only the args are wrong the
    error's code is ``bad_arguments``."""
    obj = unpack(data, max_size)
    if type(obj) is dict:
        kind = obj.get("type")
        version = obj.get("v")
        if type(kind) is str and type(version) is int and version == PROTOCOL_VERSION:
            model = _MODELS.get(kind)
            if model is Call and call_models is not None:
                method = obj.get("method")
                if type(method) is str:
                    model = call_models.get(method, Call)
            if model is not None:
                try:
                    return model.__pydantic_validator__.validate_python(obj)
                except ValidationError as exc:
                    raise _invalid(kind, obj, exc, model is not _MODELS[kind]) from None
                except Exception as exc:  # defensive: nothing else may leak out
                    raise MessageError(
                        f"bad '{kind}' message: {type(exc).__name__}: {exc}",
                        request_id=_request_id(obj),
                    ) from None
    raise _diagnose(obj)


def peek(data: Any, kind: str, max_size: int = MAX_MESSAGE_BYTES) -> dict[str, Any] | None:
    """The unvalidated fields of a msgpack message of type ``kind`` and this protocol
    version, or None for anything else (another type, JSON, too large, undecodable...).

    For shortcuts of the common case: validate the fields with the message's model, and
    hand anything that is None or fails to ``decode``, whose results and errors are the
    reference (the shortcut then never changes an answer, only saves steps)."""
    if type(data) is bytes and 0 < len(data) <= max_size and data[0] in MSGPACK_MAP:
        try:
            obj = unpack_msgpack(data)
        except Exception:
            return None
        if type(obj) is dict and obj.get("type") == kind:
            version = obj.get("v")
            if type(version) is int and version == PROTOCOL_VERSION:
                return obj
    return None


_validate_ok = Ok.__pydantic_validator__.validate_python


def decode_reply(data: bytes, max_size: int = MAX_MESSAGE_BYTES) -> Message:
    """``decode`` with a shortcut for the common reply, an ``ok`` in msgpack."""
    fields = peek(data, "ok", max_size)
    if fields is not None:
        try:
            return _validate_ok(fields)
        except ValidationError:
            pass  # decode says what is wrong
    return decode(data, max_size)


def validate_call(fields: dict[str, Any], model: type[Call]) -> Call:
    """Validate the fields of a call with a ``call_model`` (e.g. a ``Call`` decoded without
    it); raises MessageError (``bad_arguments`` if only the args are wrong)."""
    try:
        return model.__pydantic_validator__.validate_python(fields)
    except ValidationError as exc:
        raise _invalid("call", fields, exc, True) from None


def _invalid(kind: str, obj: dict, exc: ValidationError, typed_args: bool) -> MessageError:
    text, problems = describe_validation_error(exc)
    rid = _request_id(obj)
    if typed_args and all(p["field"].split(".")[0] == "args" for p in problems):
        method = obj["method"]
        return MessageError(f"{method}: {text}", ErrorCode.bad_arguments, rid, {"errors": problems})
    return MessageError(
        f"bad '{kind}' message: {text}", request_id=rid, details={"errors": problems}
    )


def _request_id(obj: dict) -> str | None:
    rid = obj.get("id")
    return rid if isinstance(rid, str) and len(rid) <= 64 else None


def _diagnose(obj: Any) -> MessageError:
    """The error for a decoded object that is not a message of a known type and version."""
    if not isinstance(obj, dict):
        return MessageError(f"expected a map (object) at top level, got {type(obj).__name__}")
    rid = _request_id(obj)
    version = obj.get("v")
    if "v" not in obj:
        return MessageError("field 'v' (protocol version): missing", request_id=rid)
    if type(version) is not int:
        return MessageError(
            f"field 'v' (protocol version): got {short_repr(version)}; expected an integer",
            request_id=rid,
        )
    if version != PROTOCOL_VERSION:
        return MessageError(
            f"protocol version {version} is not supported; this side speaks version "
            f"{PROTOCOL_VERSION}",
            ErrorCode.version_mismatch,
            request_id=rid,
        )
    kind = obj.get("type")
    got = "missing" if "type" not in obj else f"got {short_repr(kind)}"
    return MessageError(f"field 'type': {got}; expected one of {sorted(_MODELS)}", request_id=rid)


def error_reply(
    request_id: str | None,
    code: ErrorCode,
    message: str,
    details: dict[str, Any] | None = None,
) -> Error:
    """An ``error`` reply (request id ``""`` when the request could not be read)."""
    return Error(id=request_id or "", error=ErrorInfo(code=code, message=message, details=details))
