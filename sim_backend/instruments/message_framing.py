"""Messages out of a byte stream, as a LAN instrument that speaks raw SCPI sockets reads
them: split at the termination, never inside an IEEE 488.2 definite-length block
(IEEE 488.2-1992 sec. 7.7.6, ``#<n><length><bytes>``), a ``#`` inside a quoted string
starting no block. The rules in full are in ``tcp_server``'s module docstring."""

from __future__ import annotations

_LF, _CR = 0x0A, 0x0D
_QUOTES = (0x22, 0x27)  # " and '
_WAIT = -1  # block header not complete yet: wait for more bytes
_NOT_A_BLOCK = -2


def _block_end(buf: bytearray, h: int) -> int:
    """End offset of the definite-length block whose ``#`` is at ``buf[h]``; ``_WAIT`` if the
    header is incomplete so far, ``_NOT_A_BLOCK`` if this ``#`` starts no block."""
    if h + 1 >= len(buf):
        return _WAIT
    n = buf[h + 1] - 48
    if not 1 <= n <= 9:
        return _NOT_A_BLOCK
    digits = buf[h + 2 : h + 2 + n]
    if len(digits) == n and digits.isdigit():
        return h + 2 + n + int(digits)
    if len(digits) < n and (not digits or digits.isdigit()):
        return _WAIT
    return _NOT_A_BLOCK


def _quote_state(buf: bytearray, start: int, stop: int, quote: int) -> int:
    """Open quote character (0 if none) after ``buf[start:stop]``, given the state at start."""
    for c in buf[start:stop]:
        if quote:
            if c == quote:
                quote = 0
        elif c in _QUOTES:
            quote = c
    return quote


class MessageFramer:
    """Split a byte stream into messages (see the module docstring for the rules).

    ``feed(data)`` returns the messages completed by ``data`` (terminator stripped, bytes).
    """

    def __init__(self, termination: bytes = b"\n") -> None:
        if not termination:
            raise ValueError("the termination must not be empty")
        self._delim = termination[-1:]
        self._delim_byte = termination[-1]
        self._prefix = termination[:-1].rstrip(b"\r\n")  # a non-CR/LF rest of the terminator
        self._skip_lf_after = self._delim_byte == _CR
        self._buf = bytearray()
        self._pos = 0  # scanned up to here
        self._floor = 0  # end of the last block of the current message (never stripped below)
        self._qpos = 0  # quote state known up to here
        self._quote = 0
        self._need = 0  # a block is pending: nothing to do before the buffer has this size
        self._skip_lf = False

    def _strip(self, data: bytes | bytearray, start: int, stop: int, floor: int) -> bytes:
        prefix = self._prefix
        if prefix and stop - len(prefix) >= floor and data[stop - len(prefix) : stop] == prefix:
            stop -= len(prefix)
        while stop > floor and data[stop - 1] in (_CR, _LF):
            stop -= 1
        return bytes(data[start:stop])

    def feed(self, data: bytes) -> list[bytes]:
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == _LF:
                data = data[1:]
        if not data:
            return []
        buf = self._buf
        delim = self._delim
        # fast path: one whole message without block in one chunk
        if not buf and data.find(delim) == len(data) - 1 and b"#" not in data:
            if self._skip_lf_after:
                self._skip_lf = True
            message = self._strip(data, 0, len(data) - 1, 0)
            return [message] if message else []
        buf += data
        size = len(buf)
        if size < self._need:
            return []
        messages: list[bytes] = []
        start, pos, floor, qpos, quote = 0, self._pos, self._floor, self._qpos, self._quote
        need = 0
        while True:
            d = buf.find(delim, pos)
            end = size if d < 0 else d
            h = buf.find(b"#", pos, end)
            waiting = False
            while h >= 0:
                quote = _quote_state(buf, qpos, h, quote)
                qpos = h
                block_end = _NOT_A_BLOCK if quote else _block_end(buf, h)
                if block_end == _NOT_A_BLOCK:
                    h = buf.find(b"#", h + 1, end)
                    continue
                waiting = True
                pos = h  # re-parse this header when more bytes are in
                if block_end == _WAIT:
                    break
                if block_end > size:
                    need = block_end
                    break
                pos = floor = qpos = block_end
                waiting = False
                break
            if waiting:
                break
            if h >= 0:  # a block was read whole: look for the terminator after it
                continue
            if d < 0:
                pos = size
                break
            message = self._strip(buf, start, d, floor)
            if message:
                messages.append(message)
            pos = d + 1
            if self._skip_lf_after:
                if pos < size and buf[pos] == _LF:
                    pos += 1
                elif pos == size:
                    self._skip_lf = True
            start = floor = qpos = pos
            quote = 0
        if start:
            del buf[:start]
        self._pos, self._floor, self._qpos = pos - start, floor - start, qpos - start
        self._quote = quote
        self._need = need - start if need else 0
        return messages
