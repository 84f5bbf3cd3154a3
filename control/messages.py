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
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


_packb = msgpack.Packer(default=_default, autoreset=True, use_bin_type=True).pack
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
            return msgpack.unpackb(
                data, raw=False, strict_map_key=True, max_bin_len=0, max_ext_len=0
            )
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
    except (TypeError, ValueError, OverflowError) as exc:
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
            problem["value"] = (
                value if isinstance(value, str | int | float | bool | None) else _short(value)
            )
        problems.append(problem)
    return "; ".join(parts), problems


def decode(data: bytes, max_size: int = MAX_MESSAGE_BYTES) -> Message:
    """Wire bytes -> a validated message model. Raises MessageError, and nothing else."""
    obj = loads(data, max_size)
    if not isinstance(obj, dict):
        raise MessageError(f"expected a map (object) at top level, got {type(obj).__name__}")
    rid = obj.get("id")
    rid = rid if isinstance(rid, str) and len(rid) <= 64 else None
    version = obj.get("v")
    if version != PROTOCOL_VERSION or type(version) is not int:
        if "v" not in obj:
            raise MessageError("field 'v' (protocol version): missing", request_id=rid)
        if type(version) is not int:
            raise MessageError(
                f"field 'v' (protocol version): got {_short(version)}; expected an integer",
                request_id=rid,
            )
        raise MessageError(
            f"protocol version {version} is not supported; this side speaks version "
            f"{PROTOCOL_VERSION}",
            ErrorCode.version_mismatch,
            request_id=rid,
        )
    kind = obj.get("type")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        got = "missing" if "type" not in obj else f"got {_short(kind)}"
        raise MessageError(
            f"field 'type': {got}; expected one of {sorted(_MODELS)}", request_id=rid
        )
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        text, problems = describe_validation_error(exc)
        raise MessageError(
            f"bad '{kind}' message: {text}", request_id=rid, details={"errors": problems}
        ) from None
    except Exception as exc:  # defensive: validation must never leak another exception
        raise MessageError(f"bad '{kind}' message: {type(exc).__name__}: {exc}") from None


def error_reply(
    request_id: str | None,
    code: ErrorCode,
    message: str,
    details: dict[str, Any] | None = None,
) -> Error:
    """An ``error`` reply (request id ``""`` when the request could not be read)."""
    return Error(id=request_id or "", error=ErrorInfo(code=code, message=message, details=details))
