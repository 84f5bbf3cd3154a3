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

Wire format
-----------
One ZeroMQ frame per message, encoded as **msgpack** (default) or **JSON** (UTF-8). There is
no prefix byte: the format is recognised from the first byte, which works because a message
is always a map (an object) at top level - msgpack maps start with 0x80-0x8f, 0xde or 0xdf,
a JSON object with ``{`` (after optional whitespace). Event batches (``control.events``) are
arrays: msgpack 0x90-0x9f, 0xdc, 0xdd, or JSON ``[``. Anything else is refused. A server
answers in the format of the request. Pickle is never used.

Only JSON-compatible data crosses the wire: the msgpack decoder refuses binary and extension
types and non-string map keys, so every decoded value is one of dict/list/str/int/float/
bool/None - exactly what ``json.loads`` produces. This is why ``args`` and ``result`` can be
typed ``Any`` without a second validation pass.

The size limit (``MAX_MESSAGE_BYTES``, 1 MiB, configurable per call) is checked on the raw
bytes before any decoding, and on encoding. Every decoding problem - garbage, truncated,
oversized, wrong types, unknown message type, other protocol version - raises one exception
type, ``MessageError``, whose text says what was wrong; it carries an ``ErrorCode`` and, when
it could be read, the request id, so a server can still answer with an error reply.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20  # 1 MiB

Format = Literal["msgpack", "json"]

ShortStr = Annotated[str, Field(max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=128)]


class ErrorCode(StrEnum):
    """What went wrong, in a word a program can branch on."""

    bad_message = "bad_message"  # undecodable, oversized, missing/ill-typed fields
    unknown_method = "unknown_method"  # the server does not serve this method
    bad_arguments = "bad_arguments"  # the args failed the method's argument model
    version_mismatch = "version_mismatch"  # the peers speak different protocol versions
    locked = "locked"  # the node is locked by another owner
    timeout = "timeout"  # no reply in time (raised client-side)
    failed = "failed"  # the handler raised, or returned something not JSON-compatible


class MessageError(ValueError):
    """A message could not be encoded or decoded. ``str(exc)`` says what was wrong."""

    def __init__(
        self,
        message: str,
        code: ErrorCode = ErrorCode.bad_message,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id
        self.details = details


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

# --- codec -----------------------------------------------------------------------------------

_MSGPACK_MAP = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
_MSGPACK_ARRAY = frozenset([*range(0x90, 0xA0), 0xDC, 0xDD])
_JSON_SPACE = b" \t\r\n"
_BYTES = (bytes, bytearray, memoryview)


def _default(obj: Any) -> Any:
    """Packer hook for values msgpack/json do not know: pydantic models are dumped, numpy
    scalars and arrays become Python numbers and lists."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} value {_short(obj)} is not JSON-compatible")


_unpackb = msgpack.unpackb


def _unpack(data: Any) -> Any:
    """msgpack -> JSON-compatible data, or a msgpack exception.

    Only the options that differ from msgpack's defaults are passed, spelled out: each
    keyword costs a name lookup in the compiled call, and ``**options`` would also merge a
    dict, on every message. The defaults (msgpack >= 1.0) are raw=False (strings are UTF-8
    text) and strict_map_key=True (map keys must be strings; binary keys are refused by
    max_bin_len); tests check both."""
    return _unpackb(data, max_bin_len=0, max_ext_len=0)  # no binary, no extension types


_local = threading.local()


def encoder(fmt: Format) -> Callable[[Any], bytes]:
    """A function packing JSON-compatible data as ``fmt`` bytes, for one thread's repeated
    use (a msgpack packer of its own, reusing its buffer). It raises what the packer raises
    (TypeError, ValueError, OverflowError, RecursionError); ``dumps`` wraps those."""
    if fmt == "msgpack":
        return msgpack.Packer(default=_default, use_bin_type=True).pack
    return lambda obj: _json_dumps(obj).encode()


def _packb(obj: Any) -> bytes:
    # A Packer reuses its buffer, which makes it fast and not thread-safe: one per thread.
    try:
        pack = _local.pack
    except AttributeError:
        pack = _local.pack = msgpack.Packer(default=_default, use_bin_type=True).pack
    return pack(obj)


_json_dumps = json.JSONEncoder(
    default=_default, separators=(",", ":"), ensure_ascii=False, allow_nan=True
).encode


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def detect_format(data: bytes) -> Format:
    """The format of an encoded message or event batch, from its first byte."""
    if not data:
        raise MessageError("empty message (0 bytes)")
    first = data[0]
    if first in _MSGPACK_MAP or first in _MSGPACK_ARRAY:
        return "msgpack"
    if first in b"{[" or (first in _JSON_SPACE and bytes(data).lstrip()[:1] in (b"{", b"[")):
        return "json"
    raise MessageError(
        f"not a message: first byte 0x{first:02x} starts neither a msgpack map/array "
        "nor a JSON object/array"
    )


def _msgpack_reason(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, msgpack.ExtraData):
        return "trailing bytes after the message"
    if isinstance(exc, msgpack.StackError):
        return "nesting too deep"
    if isinstance(exc, msgpack.FormatError):
        return "invalid msgpack byte"
    if "max_bin_len" in text:
        return "binary values are not allowed (JSON-compatible data only)"
    if "max_ext_len" in text:
        return "msgpack extension types are not allowed (JSON-compatible data only)"
    if "incomplete input" in text:
        return "truncated message (incomplete input)"
    if isinstance(exc, UnicodeDecodeError):
        return f"string is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def loads(data: bytes, max_size: int = MAX_MESSAGE_BYTES) -> Any:
    """Bytes -> JSON-compatible Python data (msgpack or JSON, detected). Raises MessageError."""
    if not isinstance(data, _BYTES):
        raise MessageError(f"expected bytes, got {type(data).__name__}")
    size = len(data)
    if size > max_size:
        raise MessageError(f"message of {size} bytes exceeds the limit of {max_size} bytes")
    if detect_format(data) == "msgpack":
        try:
            return _unpack(data)
        except Exception as exc:  # every msgpack failure mode becomes one error type
            raise MessageError(f"undecodable msgpack: {_msgpack_reason(exc)}") from None
    try:
        return json.loads(bytes(data) if isinstance(data, memoryview) else data)
    except RecursionError:
        raise MessageError("undecodable JSON: nesting too deep") from None
    except UnicodeDecodeError as exc:
        raise MessageError(f"undecodable JSON: not valid UTF-8 ({exc.reason})") from None
    except ValueError as exc:
        raise MessageError(f"undecodable JSON: {exc}") from None


def dumps(obj: Any, fmt: Format = "msgpack", max_size: int = MAX_MESSAGE_BYTES) -> bytes:
    """JSON-compatible data (pydantic models allowed) -> bytes. Raises MessageError."""
    try:
        data = _packb(obj) if fmt == "msgpack" else _json_dumps(obj).encode()
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise MessageError(f"cannot encode as {fmt}: {exc}") from None
    if len(data) > max_size:
        raise MessageError(
            f"encoded message of {len(data)} bytes exceeds the limit of {max_size} bytes"
        )
    return data


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
            parts.append(f"{field}: unexpected field (value {_short(value)})")
        else:
            parts.append(f"{field}: got {_short(value)} ({type(value).__name__}); {expected}")
        problem: dict[str, Any] = {"field": field, "expected": expected, "type": err["type"]}
        if err["type"] != "missing":
            plain = isinstance(value, int | float | bool | None) or (
                isinstance(value, str) and len(value) <= 200
            )
            problem["value"] = value if plain else _short(value, 200)
        problems.append(problem)
    return "; ".join(parts), problems


def _unpack_fast(data: bytes, max_size: int) -> Any:
    if type(data) is bytes and 0 < len(data) <= max_size and data[0] in _MSGPACK_MAP:
        try:
            return _unpack(data)
        except Exception as exc:
            raise MessageError(f"undecodable msgpack: {_msgpack_reason(exc)}") from None
    return loads(data, max_size)


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
    obj = _unpack_fast(data, max_size)
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
    if type(data) is bytes and 0 < len(data) <= max_size and data[0] in _MSGPACK_MAP:
        try:
            obj = _unpack(data)
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
            f"field 'v' (protocol version): got {_short(version)}; expected an integer",
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
    got = "missing" if "type" not in obj else f"got {_short(kind)}"
    return MessageError(f"field 'type': {got}; expected one of {sorted(_MODELS)}", request_id=rid)


def error_reply(
    request_id: str | None,
    code: ErrorCode,
    message: str,
    details: dict[str, Any] | None = None,
) -> Error:
    """An ``error`` reply (request id ``""`` when the request could not be read)."""
    return Error(id=request_id or "", error=ErrorInfo(code=code, message=message, details=details))
