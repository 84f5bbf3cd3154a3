"""What a simulated SCPI instrument's messages carry: argument kinds (numbers with units
and SI prefixes, booleans, choices, strings, IEEE 488.2 blocks), the SCPI errors a bad one
raises (SCPI-99 vol. 2 ch. 21 error codes), and the splitting of a message at separators
outside strings and blocks. The command table that uses them is ``scpi``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any


def keyword_forms(keyword: str) -> tuple[str, str]:
    """(long, short) upper-case forms of a SCPI keyword written as in manuals (``SOURce``)."""
    return keyword.upper(), "".join(c for c in keyword if not c.islower()).upper()


ERROR_MESSAGES: dict[int, str] = {
    0: "No error",
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -120: "Numeric data error",
    -131: "Invalid suffix",
    -161: "Invalid block data",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -300: "Device-specific error",
    -350: "Queue overflow",
    -400: "Query error",
}
_SI_PREFIXES = {
    "EX": 1e18,
    "PE": 1e15,
    "T": 1e12,
    "G": 1e9,
    "MA": 1e6,
    "K": 1e3,
    "M": 1e-3,
    "U": 1e-6,
    "N": 1e-9,
    "P": 1e-12,
    "F": 1e-15,
    "A": 1e-18,
}
_NUMERIC = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%]*)")


class ScpiError(Exception):
    """Abort the current command and queue SCPI error ``code`` (with an optional detail)."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code, self.detail = code, detail
        super().__init__(format_error(code, detail))


def format_error(code: int, detail: str = "") -> str:
    """An error-queue entry as ``SYST:ERR?`` returns it: ``-222,"Data out of range;<detail>"``."""
    text = ERROR_MESSAGES.get(code, "Device-specific error" if code > 0 else "Error")
    if detail:
        text += ";" + detail
    return f'{code},"{text.replace(chr(34), chr(39))}"'


@dataclass(frozen=True)
class Number:
    """A numeric argument (NRf, ``MIN``/``MAX``, optional unit with SI prefix) in [lo, hi]."""

    lo: float = -math.inf
    hi: float = math.inf
    unit: str = ""
    integer: bool = False
    fmt: str = ""  # format spec for replies; default: integers plain, floats ".12g"

    def parse(self, text: str) -> float | int:
        t = text.strip()
        word = t.upper()
        if word in ("MIN", "MINIMUM", "MAX", "MAXIMUM"):
            value = self.lo if word.startswith("MIN") else self.hi
            if not math.isfinite(value):
                raise ScpiError(-224, f"{t} is not defined here")
            return int(value) if self.integer else value
        m = _NUMERIC.fullmatch(t)
        if m is None:
            if t[:1].isalpha():
                raise ScpiError(-224, f"expected a number, got {t}")
            raise ScpiError(-104 if t[:1] in "\"'#" else -120, f"expected a number, got {t}")
        value: float | int = float(m[1]) * self._multiplier(m[2])
        if not math.isfinite(value):
            raise ScpiError(-222, f"{t} is not a finite number")
        if self.integer:
            value = round(value)
        if not self.lo <= value <= self.hi:
            unit = f" {self.unit}" if self.unit else ""
            raise ScpiError(-222, f"{t} outside {self.lo:g}..{self.hi:g}{unit}")
        return value

    def _multiplier(self, suffix: str) -> float:
        if not suffix:
            return 1.0
        suffix, unit = suffix.upper(), self.unit.upper()
        if unit and suffix.endswith(unit):
            prefix = suffix[: len(suffix) - len(unit)]
            if not prefix:
                return 1.0
            if prefix == "M" and unit in ("HZ", "OHM"):  # SCPI: MHZ and MOHM are mega
                return 1e6
            if prefix in _SI_PREFIXES:
                return _SI_PREFIXES[prefix]
        raise ScpiError(-131, f"unit {suffix} where {self.unit or 'none'} is expected")

    def format(self, value: Any) -> str:
        if self.fmt:
            return format(value, self.fmt)
        return str(int(value)) if self.integer else format(float(value), ".12g")


def Integer(lo: float = -math.inf, hi: float = math.inf, unit: str = "") -> Number:
    """An integer argument (non-integers are rounded, as SCPI instruments do)."""
    return Number(lo, hi, unit=unit, integer=True)


@dataclass(frozen=True)
class Boolean:
    """``ON``/``OFF``/``1``/``0`` (any number: non-zero after rounding is ON); replies 1/0."""

    def parse(self, text: str) -> bool:
        word = text.strip().upper()
        if word in ("ON", "1"):
            return True
        if word in ("OFF", "0"):
            return False
        m = _NUMERIC.fullmatch(word)
        if m is not None and not m[2]:
            number = float(m[1])
            if not math.isfinite(number):
                raise ScpiError(-224, f"expected ON, OFF, 1 or 0, got {text.strip()}")
            return round(number) != 0
        raise ScpiError(-224, f"expected ON, OFF, 1 or 0, got {text.strip()}")

    def format(self, value: Any) -> str:
        return "1" if value else "0"


class Choice:
    """One of the given keywords (``Choice("INTernal", "EXTernal")``); the value is the short
    upper-case form (``"INT"``), which is also the reply, as SCPI instruments answer."""

    def __init__(self, *options: str) -> None:
        self.options = options
        self._lookup: dict[str, str] = {}
        for option in options:
            long, short = keyword_forms(option)
            self._lookup[long] = self._lookup[short] = short

    def parse(self, text: str) -> str:
        try:
            return self._lookup[text.strip().upper()]
        except KeyError:
            raise ScpiError(
                -224, f"expected one of {', '.join(self.options)}, got {text.strip()}"
            ) from None

    def format(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class String:
    """A quoted string argument (``"..."`` or ``'...'``, doubled quotes inside); replies quoted."""

    max_length: int | None = None

    def parse(self, text: str) -> str:
        t = text.strip()
        if len(t) < 2 or t[0] not in "\"'" or t[-1] != t[0]:
            raise ScpiError(-104, f"expected a quoted string, got {t}")
        value = t[1:-1].replace(t[0] * 2, t[0])
        if self.max_length is not None and len(value) > self.max_length:
            raise ScpiError(-224, f"string longer than {self.max_length} characters")
        return value

    def format(self, value: Any) -> str:
        return '"' + str(value).replace('"', '""') + '"'


def parse_block(text: str) -> bytes:
    """The payload of an IEEE 488.2 block ``#<n><len><bytes>`` (or ``#0<bytes>``), as bytes."""
    t = text.lstrip()
    if t[:2] == "#0":
        return t[2:].encode("latin-1")
    digits = int(t[1]) if t[:1] == "#" and t[1:2].isdigit() else 0
    size = t[2 : 2 + digits]
    if not digits or len(size) != digits or not size.isdigit():
        raise ScpiError(-161, "expected #<n><length><bytes>")
    data = t[2 + digits : 2 + digits + int(size)]
    if len(data) != int(size):
        raise ScpiError(-161, f"block announces {size} bytes, holds {len(data)}")
    return data.encode("latin-1")


# -- message splitting ----------------------------------------------------------------------
def _split(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside quoted strings and blocks; strip white space around pieces
    (but never inside a block)."""
    if '"' not in text and "'" not in text and "#" not in text:
        return [piece.strip() for piece in text.split(sep)]
    pieces: list[str] = []
    start = block_end = 0
    i, n, quote = 0, len(text), ""
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#" and i + 1 < n and text[i + 1].isdigit():
            digits = int(text[i + 1])
            size = text[i + 2 : i + 2 + digits]
            if digits == 0:
                i = block_end = n
                continue
            if len(size) == digits and size.isdigit():
                i = block_end = min(i + 2 + digits + int(size), n)
                continue
        elif c == sep:
            pieces.append(_trim(text[start:i], block_end - start))
            start = i + 1
        i += 1
    pieces.append(_trim(text[start:], block_end - start))
    return pieces


def _trim(piece: str, keep: int) -> str:
    """Strip white space, but only after the first ``keep`` characters (a block's end)."""
    if keep <= 0:
        return piece.strip()
    return (piece[:keep] + piece[keep:].rstrip()).lstrip()
