"""Control-plane messages: round trips in both formats, and one clear error for bad input."""

from __future__ import annotations

import contextlib
import json
import random

import msgpack
import numpy as np
import pytest
from pydantic import BaseModel, Field

from control.messages import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Call,
    Error,
    ErrorCode,
    ErrorInfo,
    Hello,
    MessageError,
    Ok,
    Ping,
    call_model,
    decode,
    detect_format,
    dumps,
    encode,
    loads,
)

MESSAGES = [
    Hello(id="1", name="orchestrator"),
    Ping(id="2"),
    Call(id="3", method="set_power", args={"channel": 1, "power_mw": 0.5}),
    Call(id="4", method="run", args={"nested": {"a": [1, 2.5, None, True, "x"]}}, owner="anna"),
    Ok(id="5", result={"values": [1, 2, 3], "label": "ü"}),
    Ok(id="6"),
    Error(id="7", error=ErrorInfo(code=ErrorCode.locked, message="locked by anna")),
    Error(
        id="",
        error=ErrorInfo(code="bad_arguments", message="x", details={"errors": [{"field": "a"}]}),
    ),
]


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: f"{m.type}-{m.id}")
def test_every_message_round_trips(msg, fmt) -> None:
    data = encode(msg, fmt)
    assert detect_format(data) == fmt
    back = decode(data)
    assert back == msg
    assert type(back) is type(msg)
    assert back.v == PROTOCOL_VERSION


def test_json_is_plain_json_and_msgpack_is_plain_msgpack() -> None:
    msg = Call(id="9", method="m", args={"x": 1})
    as_json = json.loads(encode(msg, "json"))
    as_msgpack = msgpack.unpackb(encode(msg, "msgpack"))
    assert (
        as_json
        == as_msgpack
        == {
            "v": 1,
            "id": "9",
            "type": "call",
            "method": "m",
            "args": {"x": 1},
            "owner": None,
        }
    )
    # leading whitespace in JSON is fine; bytearray and memoryview inputs too
    assert decode(b"  \n" + encode(msg, "json")) == msg
    assert decode(bytearray(encode(msg))) == msg
    assert decode(memoryview(encode(msg))) == msg


def test_models_are_frozen_and_forbid_extra_fields() -> None:
    msg = Ping(id="1")
    with pytest.raises(ValueError):
        msg.id = "2"  # type: ignore[misc]
    with pytest.raises(ValueError):
        Ping(id="1", extra=1)  # type: ignore[call-arg]


def test_numpy_and_pydantic_values_are_encoded_as_plain_data() -> None:
    class Point(BaseModel):
        x: float

    msg = Ok(id="1", result={"a": np.arange(3), "b": np.float32(0.5), "p": Point(x=1.0)})
    for fmt in ("msgpack", "json"):
        assert decode(encode(msg, fmt)).result == {"a": [0, 1, 2], "b": 0.5, "p": {"x": 1.0}}


@pytest.mark.parametrize("value", [object(), {1, 2}, complex(1, 2)])
def test_values_that_are_not_json_compatible_are_refused_when_encoding(value) -> None:
    for fmt in ("msgpack", "json"):
        with pytest.raises(MessageError, match="cannot encode"):
            encode(Ok(id="1", result={"x": value}), fmt)


def test_bytes_are_refused_by_json_encoding_and_by_any_decoding() -> None:
    with pytest.raises(MessageError, match="cannot encode as json"):
        encode(Ok(id="1", result=b"raw"), "json")
    with pytest.raises(MessageError, match="binary values are not allowed"):
        decode(encode(Ok(id="1", result=b"raw"), "msgpack"))


def test_size_limit_on_encode_and_before_decode() -> None:
    big = Ok(id="1", result="x" * 2000)
    with pytest.raises(MessageError, match="exceeds the limit of 1000 bytes"):
        encode(big, max_size=1000)
    data = encode(big)
    with pytest.raises(MessageError, match=rf"message of {len(data)} bytes exceeds the limit"):
        decode(data, max_size=1000)
    assert MAX_MESSAGE_BYTES == 1 << 20
    with pytest.raises(MessageError, match="exceeds"):
        decode(b"{" + b" " * MAX_MESSAGE_BYTES + b"}")


def _packed(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


GOOD = {"v": 1, "id": "1", "type": "call", "method": "m", "args": {}}
BAD_INPUTS = {
    "empty": (b"", "empty message"),
    "garbage": (b"\x00\x01\x02", "first byte 0x00"),
    "text": (b"hello", "first byte 0x68"),
    "bad json": (b'{"v": 1,', "undecodable JSON"),
    "json trailing": (b'{"v": 1} x', "undecodable JSON"),
    "json invalid utf-8": (b'{"v": "\xff"}', "not valid UTF-8"),
    "msgpack invalid byte": (b"\x81\xc1\x01", "invalid msgpack byte"),
    "msgpack trailing": (_packed(GOOD) + b"\x00", "trailing bytes"),
    "msgpack bad utf-8": (b"\x81\xa2\xff\xfe\x01", "not valid UTF-8"),
    "binary value": (_packed({**GOOD, "args": {"x": b"\x00"}}), "binary values are not allowed"),
    "extension type": (_packed({**GOOD, "args": {"x": msgpack.ExtType(5, b"ab")}}), "extension"),
    "integer map key": (_packed({**GOOD, "args": {1: 2}}), "map key"),
    "binary map key": (_packed({**GOOD, "args": {b"k": 2}}), "binary values are not allowed"),
    "deep nesting": (b"\x81\xa1a" + b"\x91" * 100_000 + b"\x01", "nesting too deep"),
    "deep json": (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "undecodable JSON"),
    "array at top": (_packed([1, 2]), "expected a map (object) at top level, got list"),
    "json array": (b"[1, 2]", "got list"),
    "no version": (_packed({"id": "1", "type": "ping"}), "field 'v' (protocol version): missing"),
    "version as text": (_packed({**GOOD, "v": "1"}), "got '1'; expected an integer"),
    "version as bool": (_packed({**GOOD, "v": True}), "got True; expected an integer"),
    "no type": (_packed({"v": 1, "id": "1"}), "field 'type': missing"),
    "unknown type": (_packed({"v": 1, "id": "1", "type": "reboot"}), "got 'reboot'"),
    "type as list": (_packed({"v": 1, "id": "1", "type": ["call"]}), "field 'type': got"),
    "no id": (_packed({"v": 1, "type": "ping"}), "id: missing"),
    "id as int": (_packed({"v": 1, "id": 7, "type": "ping"}), "id: got 7 (int)"),
    "id too long": (_packed({"v": 1, "id": "x" * 65, "type": "ping"}), "id: got"),
    "method as int": (_packed({**GOOD, "method": 3}), "method: got 3 (int)"),
    "args as list": (_packed({**GOOD, "args": [1]}), "args: got [1] (list)"),
    "extra field": (_packed({**GOOD, "reboot": True}), "reboot: unexpected field"),
    "error without code": (
        _packed({"v": 1, "id": "1", "type": "error", "error": {"message": "m"}}),
        "error.code: missing",
    ),
    "unknown error code": (
        _packed({"v": 1, "id": "1", "type": "error", "error": {"code": "meh", "message": "m"}}),
        "error.code: got 'meh'",
    ),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_raises_one_clear_message_error(name) -> None:
    data, expected = BAD_INPUTS[name]
    with pytest.raises(MessageError) as info:
        decode(data)
    assert expected in str(info.value)
    assert info.value.code is ErrorCode.bad_message


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(MessageError, match="expected bytes, got str"):
        decode('{"v": 1}')  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_every_truncation_of_a_message_raises_message_error(fmt) -> None:
    data = encode(MESSAGES[3], fmt)
    for cut in range(len(data)):
        with pytest.raises(MessageError):
            decode(data[:cut])


def test_random_garbage_and_bit_flips_raise_only_message_error() -> None:
    rng = random.Random(1)
    valid = [encode(m, f) for m in MESSAGES for f in ("msgpack", "json")]
    for _ in range(3000):
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        else:
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        with contextlib.suppress(MessageError):
            decode(data)


def test_other_protocol_version_is_a_version_mismatch_with_the_request_id() -> None:
    with pytest.raises(MessageError) as info:
        decode(_packed({"v": 2, "id": "abc", "type": "ping"}))
    assert info.value.code is ErrorCode.version_mismatch
    assert info.value.request_id == "abc"
    assert "protocol version 2 is not supported; this side speaks version 1" in str(info.value)


def test_request_id_is_recovered_from_an_invalid_message() -> None:
    with pytest.raises(MessageError) as info:
        decode(_packed({**GOOD, "id": "r7", "method": 3}))
    assert info.value.request_id == "r7"
    assert info.value.details["errors"][0]["field"] == "method"
    assert info.value.details["errors"][0]["value"] == 3


def test_call_model_validates_args_in_the_same_pass() -> None:
    class SetPower(BaseModel):
        channel: int = Field(ge=0, le=7)
        power_mw: float = Field(ge=0, le=50)

    models = {"set_power": call_model("set_power", SetPower), "off": call_model("off", None)}
    msg = decode(
        encode(Call(id="1", method="set_power", args={"channel": 2, "power_mw": 1})),
        call_models=models,
    )
    assert isinstance(msg.args, SetPower) and msg.args.power_mw == 1.0

    bad = encode(Call(id="2", method="set_power", args={"channel": 9, "power_mw": "x"}))
    with pytest.raises(MessageError) as info:
        decode(bad, call_models=models)
    assert info.value.code is ErrorCode.bad_arguments
    text = str(info.value)
    assert "args.channel: got 9 (int); Input should be less than or equal to 7" in text
    assert "args.power_mw: got 'x' (str)" in text
    assert info.value.request_id == "2"

    with pytest.raises(MessageError, match="args.channel: missing") as info:
        decode(encode(Call(id="3", method="set_power", args={"power_mw": 1})), call_models=models)
    assert info.value.code is ErrorCode.bad_arguments

    with pytest.raises(MessageError, match="args.x: unexpected field"):
        decode(encode(Call(id="4", method="off", args={"x": 1})), call_models=models)
    assert decode(encode(Call(id="5", method="off")), call_models=models).method == "off"
    # an envelope error stays a bad message; unknown methods keep the generic Call
    with pytest.raises(MessageError) as info:
        decode(_packed({**GOOD, "method": "off", "owner": 5}), call_models=models)
    assert info.value.code is ErrorCode.bad_message
    assert type(decode(encode(Call(id="6", method="nope")), call_models=models)) is Call


def test_loads_and_dumps_handle_arrays_for_event_batches() -> None:
    for fmt in ("msgpack", "json"):
        assert loads(dumps([{"a": 1}, {"b": [2]}], fmt)) == [{"a": 1}, {"b": [2]}]
