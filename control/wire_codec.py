"""Bytes <-> JSON-compatible data: the wire formats of the control plane's messages
(``control.messages``) and event batches (``control.events``).

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
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

import msgpack
from pydantic import BaseModel

MAX_MESSAGE_BYTES = 1 << 20  # 1 MiB

Format = Literal["msgpack", "json"]


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


#: first bytes of a msgpack map (fixmap, map 16, map 32)
MSGPACK_MAP = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
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
    raise TypeError(f"{type(obj).__name__} value {short_repr(obj)} is not JSON-compatible")


_unpackb = msgpack.unpackb


def unpack_msgpack(data: Any) -> Any:
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


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def detect_format(data: bytes) -> Format:
    """The format of an encoded message or event batch, from its first byte."""
    if not data:
        raise MessageError("empty message (0 bytes)")
    first = data[0]
    if first in MSGPACK_MAP or first in _MSGPACK_ARRAY:
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
            return unpack_msgpack(data)
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


def unpack(data: bytes, max_size: int) -> Any:
    """``loads``, taking the shortest path for the common message, a msgpack map."""
    if type(data) is bytes and 0 < len(data) <= max_size and data[0] in MSGPACK_MAP:
        try:
            return unpack_msgpack(data)
        except Exception as exc:
            raise MessageError(f"undecodable msgpack: {_msgpack_reason(exc)}") from None
    return loads(data, max_size)
