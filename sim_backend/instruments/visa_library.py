"""An in-process pyvisa backend: the far end of the VISA wire is a simulated instrument.

:class:`SimulatedVisaLibrary` is a :class:`pyvisa.highlevel.VisaLibraryBase` that routes each
resource name to a :class:`~sim_backend.instruments.protocols.MessageHandler` living in the same
process. Drivers keep talking VISA (``rm.open_resource(...)``, ``write``, ``query``, ``clear``,
timeouts) exactly as in the lab; only the instrument is simulated (DESIGN.md, principle 1)::

    library = SimulatedVisaLibrary()
    library.attach("TCPIP0::alice-laser::5025::SOCKET", SimLaser("alice_laser"))
    rm = pyvisa.ResourceManager(library)
    laser = SantecTSL570("laser_a", resource=rm.open_resource("TCPIP::alice-laser::5025::SOCKET"))

Every resource class that pyvisa can parse can be attached (TCPIP SOCKET and INSTR, GPIB, ASRL,
USB INSTR, ...); names are compared in pyvisa's canonical form, case-insensitively
(``GPIB::1::INSTR`` is ``GPIB0::1::INSTR``).

The wire, as the simulated instrument sees it
---------------------------------------------
* **One write is one message.** The trailing terminator (the attached ``termination``, and
  any further trailing CR/LF, which IEEE 488.2 instruments treat as white space) is stripped
  and the message goes to ``handler.handle``. A write without terminator is one message too.
* **Bytes <-> str is latin-1**, both ways, so every byte value survives: an IEEE 488.2
  definite-length block (``#<n><len><bytes>``) written with ``write_raw`` reaches the handler
  intact, its bytes being ``message.encode("latin-1")``. A terminator is never taken from
  inside such a block. A reply is encoded as latin-1 (UTF-8 if it holds other characters);
  a handler may also return ``bytes``.
* **Replies** (plus the termination) are queued per session and read back in order; each
  reply ends with END, so ``read_raw``/``query`` stop there (or at the termination
  character if enabled) and a short ``count`` gives ``success_max_count_read``.
* **No reply is a timeout, at once.** A read with nothing queued raises
  ``VisaIOError(VI_ERROR_TMO)`` immediately, without waiting the resource's timeout: this is
  a simulation, and a dry run must not sleep (DESIGN.md, principle 3). The timeout attribute
  is stored and reported, never waited for.
* ``clear`` (device clear) and ``flush`` of the read buffer discard queued replies;
  ``assert_trigger`` sends ``*TRG`` to the handler; ``read_stb`` returns
  ``handler.status_byte()`` when the handler has one (else 0), with the MAV bit (16) set
  while a reply is queued; ``lock``/``unlock`` and events are accepted and do nothing.

Fault injection (for tests of timeouts and lost connections)
-------------------------------------------------------------
* :meth:`SimulatedVisaLibrary.inject_timeout` ``(name, reads=1)``: the next ``reads`` reads
  of that resource time out; a reply queued at that moment is lost (it "never arrived"), the
  write that asked for it still reached the instrument.
* :meth:`SimulatedVisaLibrary.drop_connection` ``(name)``: every session open on that
  resource is broken for good (any I/O raises ``VI_ERROR_CONN_LOST``; ``close`` still works)
  and new opens fail with ``VI_ERROR_RSRC_NFOUND`` until
  :meth:`SimulatedVisaLibrary.restore_connection`; then a new session works (the instrument
  kept its state, like an instrument whose network cable was re-plugged).
* :meth:`SimulatedVisaLibrary.clear_faults` ``(name=None)``: cancel pending timeouts and
  restore connections (of one resource, or all).
* A :class:`~sim_backend.instruments.faults.FaultyInstrument` attached in place of an
  instrument drives the rest (``faults.py``): its ``DroppedConnectionError`` breaks every session
  of the resource (reopening works at once), a ``Truncated`` reply is queued without the
  termination (read back with END, so the driver sees a reply without terminator), and a
  ``Late`` reply later than the session's timeout makes the next read time out while the
  reply stays queued (a device clear discards it).

A handler that raises (a bug of the simulator, not bad input: see ``MessageHandler``) raises
through ``write`` unchanged.

Thread safety: all I/O of one instrument (all sessions of one handler) is serialised by one
lock, like a real instrument that handles one message at a time. Per-call overhead is a few
microseconds; nothing sleeps.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pyvisa import constants, errors, highlevel, rname
from pyvisa.constants import StatusCode
from pyvisa.util import LibraryPath

from .faults import DroppedConnectionError, Late, Truncated
from .protocols import MessageHandler
from .visa_attributes import default_attributes

RA = constants.ResourceAttribute
_TERMCHAR, _TERMCHAR_EN = int(RA.termchar), int(RA.termchar_enabled)

_READ_DISCARD_MASK = (
    constants.VI_READ_BUF
    | constants.VI_READ_BUF_DISCARD
    | constants.VI_IO_IN_BUF
    | constants.VI_IO_IN_BUF_DISCARD
)
_MAV = 0x10  # IEEE 488.2 status byte: message available
# status codes of every transaction, looked up once (an enum class attribute is slow to get)
_SUCCESS = StatusCode.success
_MAX_COUNT_READ = StatusCode.success_max_count_read
_TERMCHAR_READ = StatusCode.success_termination_character_read
_CRLF = (0x0A, 0x0D)
_library_numbers = itertools.count(1)
_session_numbers = itertools.count(0x5100_0001)


class SimulatedVisaIOError(errors.VisaIOError):
    """A :class:`pyvisa.errors.VisaIOError` (same ``error_code``) whose message also says what
    the simulated lab knows: which resource, and what was expected."""

    def __init__(self, error_code: int, detail: str) -> None:
        super().__init__(error_code)
        self.detail = detail
        self.args = (f"{self.args[0]} [simulated lab] {detail}",)

    def __reduce__(self) -> tuple[type, tuple[int, str]]:  # type: ignore[override]
        return (SimulatedVisaIOError, (self.error_code, self.detail))


@dataclass(eq=False)
class _Attached:
    """One attached instrument: the far end of a resource name."""

    name: str
    parsed: rname.ResourceName
    handler: MessageHandler
    lock: threading.Lock
    termination: bytes
    timeouts_pending: int = 0
    reachable: bool = True

    def __post_init__(self) -> None:
        #: the termination is CR/LF only: stripping trailing CR/LF removes it too
        self.crlf_termination = all(byte in _CRLF for byte in self.termination)


@dataclass(eq=False)
class _Session:
    """One open VISA session on an attached resource."""

    attached: _Attached
    rm_session: int
    attrs: dict[int, Any]
    replies: deque[bytes] = field(default_factory=deque)
    position: int = 0  # bytes of replies[0] already read
    broken: bool = False
    stalled: int = 0  # reads that time out before a late reply can be read

    def discard_replies(self) -> None:
        self.replies.clear()
        self.position = 0
        self.stalled = 0


class _IgnoredWarnings:
    """:meth:`SimulatedVisaLibrary.ignore_warning`: pyvisa's context manager, as a small
    class (pyvisa wraps every ``read_raw`` in it; a generator-based one costs more than the
    simulated read). As pyvisa's, it leaves them ignored when the block raised."""

    __slots__ = ("_ignored", "_codes")

    def __init__(self, ignored: set[StatusCode], codes: tuple[StatusCode, ...]) -> None:
        self._ignored, self._codes = ignored, codes

    def __enter__(self) -> None:
        self._ignored.update(self._codes)

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is None:
            self._ignored.difference_update(self._codes)


def _canonical(resource_name: str) -> tuple[str, rname.ResourceName]:
    """pyvisa's canonical form of a resource name (``ValueError`` if it cannot be parsed)."""
    parsed = rname.parse_resource_name(resource_name)
    return str(parsed), parsed


def _block_end(data: bytes) -> int:
    """End offset of the last IEEE 488.2 definite-length block in ``data`` (0 if none)."""
    end = 0
    i = data.find(b"#")
    size = len(data)
    while 0 <= i < size - 1:
        n = data[i + 1] - 48
        digits = data[i + 2 : i + 2 + n]
        if 1 <= n <= 9 and len(digits) == n and digits.isdigit():
            end = min(i + 2 + n + int(digits), size)
            i = data.find(b"#", end)
        else:
            i = data.find(b"#", i + 1)
    return end


class SimulatedVisaLibrary(highlevel.VisaLibraryBase):
    """A pyvisa backend whose instruments are in-process simulated ones.

    Each ``SimulatedVisaLibrary()`` is an independent wire (pyvisa caches libraries by path, so
    an empty path gets a unique one); pass a ``library_path`` to share one library by name.
    See the module docstring for the wire semantics and the fault-injection hooks.
    """

    _attached: dict[str, _Attached]
    _sessions: dict[int, _Session]
    _rm_sessions: set[int]
    _registry_lock: threading.Lock
    _ignoring: dict[tuple[int, tuple[StatusCode, ...]], _IgnoredWarnings]

    def __new__(cls, library_path: str | LibraryPath = "") -> SimulatedVisaLibrary:
        if library_path == "":
            library_path = LibraryPath(f"qnode-sim-{next(_library_numbers)}", "simulated lab")
        return super().__new__(cls, library_path)  # type: ignore[return-value]

    @staticmethod
    def get_library_paths() -> tuple[LibraryPath, ...]:
        return (LibraryPath("qnode-sim", "simulated lab"),)

    @staticmethod
    def get_debug_info() -> dict[str, str]:  # type: ignore[override]
        return {"Backend": "qnode in-process simulated lab (sim_backend.instruments)"}

    def _init(self) -> None:
        self._attached = {}
        self._sessions = {}
        self._rm_sessions = set()
        self._registry_lock = threading.Lock()
        self._ignoring: dict[tuple[int, tuple[StatusCode, ...]], _IgnoredWarnings] = {}

    # -- attaching simulated instruments -------------------------------------------------
    def attach(
        self, resource_name: str, handler: MessageHandler, *, termination: str | None = None
    ) -> str:
        """Put ``handler`` at the far end of ``resource_name``; return the canonical name.

        ``termination`` is what the instrument expects after each message and sends after
        each reply (default: ``handler.termination`` if it has one, else ``"\\n"``); use the
        same value as the driver's terminator.
        """
        try:
            name, parsed = _canonical(resource_name)
        except ValueError as exc:
            raise ValueError(f"cannot attach {handler.name!r}: {exc}") from None
        if termination is None:
            termination = getattr(handler, "termination", "\n")
        with self._registry_lock:
            key = name.upper()
            if key in self._attached:
                other = self._attached[key].handler.name
                raise ValueError(
                    f"cannot attach {handler.name!r} at {name!r}: {other!r} is already "
                    "attached there (detach it first)"
                )
            lock = next(
                (a.lock for a in self._attached.values() if a.handler is handler),
                threading.Lock(),
            )
            self._attached[key] = _Attached(
                name, parsed, handler, lock, termination.encode("latin-1")
            )
        return name

    def detach(self, resource_name: str) -> MessageHandler:
        """Remove the instrument at ``resource_name`` (its open sessions lose the connection)."""
        attached = self._lookup(resource_name)
        with self._registry_lock:
            del self._attached[attached.name.upper()]
        with attached.lock:
            for sess in list(self._sessions.values()):
                if sess.attached is attached:
                    sess.broken = True
        return attached.handler

    def handler(self, resource_name: str) -> MessageHandler:
        """The simulated instrument attached at ``resource_name``."""
        return self._lookup(resource_name).handler

    @property
    def resources(self) -> tuple[str, ...]:
        """Canonical names of all attached resources (``list_resources`` filters these)."""
        return tuple(a.name for a in self._attached.values())

    def _lookup(self, resource_name: str) -> _Attached:
        try:
            name, _ = _canonical(resource_name)
        except ValueError:
            name = resource_name
        attached = self._attached.get(name.upper())
        if attached is None:
            raise KeyError(
                f"no simulated instrument is attached at {resource_name!r}; "
                f"attached: {', '.join(self.resources) or 'none'}"
            )
        return attached

    # -- fault injection -------------------------------------------------------------------
    def inject_timeout(self, resource_name: str, reads: int = 1) -> None:
        """Make the next ``reads`` reads of ``resource_name`` time out (queued reply lost)."""
        attached = self._lookup(resource_name)
        with attached.lock:
            attached.timeouts_pending += reads

    def drop_connection(self, resource_name: str) -> None:
        """Break every open session of ``resource_name`` (``VI_ERROR_CONN_LOST``) and refuse
        new opens until :meth:`restore_connection`."""
        attached = self._lookup(resource_name)
        with attached.lock:
            attached.reachable = False
            for sess in list(self._sessions.values()):
                if sess.attached is attached:
                    sess.broken = True

    def restore_connection(self, resource_name: str) -> None:
        """Let ``resource_name`` be opened again (sessions broken before stay broken)."""
        attached = self._lookup(resource_name)
        with attached.lock:
            attached.reachable = True

    def clear_faults(self, resource_name: str | None = None) -> None:
        """Cancel pending timeouts and restore the connection of one resource, or of all."""
        targets = (
            [self._lookup(resource_name)]
            if resource_name is not None
            else list(self._attached.values())
        )
        for attached in targets:
            with attached.lock:
                attached.timeouts_pending = 0
                attached.reachable = True

    # -- helpers -----------------------------------------------------------------------------
    def _fail(self, session: int | None, code: StatusCode, detail: str) -> SimulatedVisaIOError:
        """Record ``code`` as the last status and return the exception to raise."""
        self._last_status = code
        if session is not None:
            self._last_status_in_session[session] = code
        return SimulatedVisaIOError(code, detail)

    def _status(self, session: int, code: StatusCode) -> StatusCode:
        """``handle_return_value`` for non-error codes, with a fast path for the common ones."""
        if code in self.issue_warning_on:
            return self.handle_return_value(session, code)
        self._last_status = self._last_status_in_session[session] = code
        return code

    def _session(self, session: int) -> _Session:
        sess = self._sessions.get(session)
        if sess is None:
            raise self._fail(
                session, StatusCode.error_invalid_object, f"session {session} is not open"
            )
        return sess

    def _live(self, session: int) -> _Session:
        """The open, connected session ``session`` (else raise as a VISA library would)."""
        sess = self._sessions.get(session)
        if sess is not None and not sess.broken:
            return sess
        attached = self._session(session).attached
        raise self._fail(
            session,
            StatusCode.error_connection_lost,
            f"connection to {attached.name!r} ({attached.handler.name}) was lost; "
            "close and reopen the resource",
        )

    def _queue_reply(self, sess: _Session, reply: str | bytes | Truncated | Late | None) -> None:
        if reply is None:
            return
        if type(reply) is not str:
            if isinstance(reply, Truncated):
                sess.replies.append(reply.data)
                return
            if isinstance(reply, Late):
                if reply.delay_s * 1000 > sess.attrs[RA.timeout_value]:
                    sess.stalled += 1
                reply = reply.reply
        if isinstance(reply, str):
            try:
                reply = reply.encode("latin-1")
            except UnicodeEncodeError:
                reply = reply.encode("utf-8")
        sess.replies.append(reply + sess.attached.termination)

    # -- resource manager ------------------------------------------------------------------
    def open_default_resource_manager(self) -> tuple[int, StatusCode]:
        session = next(_session_numbers)
        self._rm_sessions.add(session)
        return session, self._status(session, _SUCCESS)

    def list_resources(self, session: int, query: str = "?*::INSTR") -> tuple[str, ...]:
        """Attached resources matching the VISA expression ``query`` (``()`` if none)."""
        return rname.filter(self.resources, query)

    def open(
        self,
        session: int,
        resource_name: str,
        access_mode: constants.AccessModes = constants.AccessModes.no_lock,
        open_timeout: int = constants.VI_TMO_IMMEDIATE,
    ) -> tuple[int, StatusCode]:
        try:
            name, _ = _canonical(resource_name)
        except ValueError as exc:
            raise self._fail(session, StatusCode.error_invalid_resource_name, str(exc)) from None
        attached = self._attached.get(name.upper())
        if attached is None:
            raise self._fail(
                session,
                StatusCode.error_resource_not_found,
                f"no simulated instrument at {name!r}; attached: "
                f"{', '.join(self.resources) or 'none'}",
            )
        if not attached.reachable:
            raise self._fail(
                session,
                StatusCode.error_resource_not_found,
                f"{name!r} ({attached.handler.name}) is unreachable: its connection was "
                "dropped (fault injection)",
            )
        new = next(_session_numbers)
        self._sessions[new] = _Session(
            attached, session, default_attributes(attached.name, attached.parsed)
        )
        return new, self._status(session, _SUCCESS)

    def close(self, session: int) -> StatusCode:  # type: ignore[override]
        if session in self._rm_sessions:
            self._rm_sessions.discard(session)
            for sid in [s for s, v in self._sessions.items() if v.rm_session == session]:
                del self._sessions[sid]
        elif self._sessions.pop(session, None) is None:
            raise self._fail(
                session, StatusCode.error_invalid_object, f"session {session} is not open"
            )
        return self.handle_return_value(None, _SUCCESS)

    # -- message-based I/O ----------------------------------------------------------------
    def write(self, session: int, data: bytes) -> tuple[int, StatusCode]:
        sess = self._sessions.get(session)
        if sess is None or sess.broken:
            sess = self._live(session)  # raises
        attached = sess.attached
        lock = attached.lock
        lock.acquire()  # (not ``with``: its bound __enter__/__exit__ cost ~1 k instructions)
        try:
            # the common case, no block: the text without trailing CR/LF ("#" looked for in
            # the text: ``in`` on bytes first tries the needle as an int and formats the
            # TypeError it gets, ~2.5 k CPU instructions a message)
            message = data.decode("latin-1")
            if attached.crlf_termination and "#" not in message:
                message = message.rstrip("\r\n")
            else:
                message = self._message(data, attached.termination)
            try:
                reply = attached.handler.handle(message)
            except DroppedConnectionError as dropped:
                for other in list(self._sessions.values()):
                    if other.attached is attached:
                        other.broken = True
                raise self._fail(
                    session, StatusCode.error_connection_lost, f"{dropped}; reopen the resource"
                ) from None
            if type(reply) is str:  # the common case, inline
                try:
                    encoded = reply.encode("latin-1")
                except UnicodeEncodeError:
                    encoded = reply.encode("utf-8")
                sess.replies.append(encoded + attached.termination)
            elif reply is not None:
                self._queue_reply(sess, reply)
        finally:
            lock.release()
        return len(data), self._status(session, _SUCCESS)

    @staticmethod
    def _message(data: bytes, term: bytes) -> str:
        """``data`` without its terminator and trailing CR/LF, never cutting into a block."""
        stop = len(data)
        floor = _block_end(data) if b"#" in data else 0
        if term and data.endswith(term) and stop - len(term) >= floor:
            stop -= len(term)
        while stop > floor and data[stop - 1] in _CRLF:
            stop -= 1
        return data[:stop].decode("latin-1")

    def read(self, session: int, count: int) -> tuple[bytes, StatusCode]:
        sess = self._sessions.get(session)
        if sess is None or sess.broken:
            sess = self._live(session)  # raises
        attached = sess.attached
        lock = attached.lock
        lock.acquire()  # (not ``with``: its bound __enter__/__exit__ cost ~1 k instructions)
        try:
            if attached.timeouts_pending or sess.stalled or not sess.replies:
                raise self._no_reply(session, sess)
            replies = sess.replies
            reply = replies[0]
            start = sess.position
            size = len(reply)
            end = start + count
            status = _MAX_COUNT_READ
            if end >= size:
                end = size
                status = _SUCCESS
            attrs = sess.attrs
            if attrs[_TERMCHAR_EN]:
                found = reply.find(attrs[_TERMCHAR], start, end)
                if found >= 0:
                    end = found + 1
                    status = _TERMCHAR_READ
            if end == size:
                replies.popleft()
                sess.position = 0
                chunk = reply if start == 0 else reply[start:]  # the whole reply, uncopied
            else:
                sess.position = end
                chunk = reply[start:end]
        finally:
            lock.release()
        return chunk, self._status(session, status)

    def _no_reply(self, session: int, sess: _Session) -> SimulatedVisaIOError:
        """The timeout of a read with no reply to give: an injected timeout (a queued reply
        is lost), a late reply (it stays queued), or nothing queued at all."""
        attached = sess.attached
        where = f"{attached.handler.name} at {attached.name!r}"
        if attached.timeouts_pending:
            attached.timeouts_pending -= 1
            if sess.replies:
                sess.replies.popleft()
                sess.position = 0
            detail = f"{where}: injected timeout, the reply never arrived"
        elif sess.stalled:
            sess.stalled -= 1
            detail = f"{where}: the reply is late (slow instrument, fault injection)"
        else:
            detail = (
                f"{where} sent nothing to read (no query pending, or the last message has "
                "no reply); the simulated library reports the timeout at once instead of waiting"
            )
        return self._fail(session, StatusCode.error_timeout, detail)

    def clear(self, session: int) -> StatusCode:
        """Device clear: discard this session's unread replies."""
        sess = self._live(session)
        with sess.attached.lock:
            sess.discard_replies()
        return self._status(session, _SUCCESS)

    def flush(self, session: int, mask: constants.BufferOperation) -> StatusCode:
        """Read-buffer flags discard unread replies; writes are never buffered."""
        sess = self._live(session)
        with sess.attached.lock:
            if int(mask) & _READ_DISCARD_MASK:
                sess.discard_replies()
        return self._status(session, _SUCCESS)

    def assert_trigger(self, session: int, protocol: constants.TriggerProtocol) -> StatusCode:
        """Software trigger: the handler receives ``*TRG``."""
        sess = self._live(session)
        with sess.attached.lock:
            self._queue_reply(sess, sess.attached.handler.handle("*TRG"))
        return self._status(session, _SUCCESS)

    def read_stb(self, session: int) -> tuple[int, StatusCode]:
        sess = self._live(session)
        with sess.attached.lock:
            status_byte = getattr(sess.attached.handler, "status_byte", None)
            stb = int(status_byte()) if callable(status_byte) else 0
            if sess.replies:
                stb |= _MAV
        return stb, self._status(session, _SUCCESS)

    def ignore_warning(  # type: ignore[override]
        self, session: int, *warnings_constants: StatusCode
    ) -> _IgnoredWarnings:
        """Ignore these warnings of ``session`` inside the ``with`` block (pyvisa API). The
        context holds no state of its own, so one per session and warnings serves every
        read (drivers ask for the same two warnings around each one)."""
        key = (session, warnings_constants)
        ignored = self._ignoring.get(key)
        if ignored is None:
            if len(self._ignoring) >= 256:
                self._ignoring.clear()
            ignored = self._ignoring[key] = _IgnoredWarnings(
                self._ignore_warning_in_session[session], warnings_constants
            )
        return ignored

    # -- attributes -------------------------------------------------------------------------
    def get_attribute(self, session: int, attribute: Any) -> tuple[Any, StatusCode]:
        sess = self._session(session)
        if attribute == RA.asrl_avalaible_number:
            with sess.attached.lock:
                pending = sum(len(r) for r in sess.replies) - sess.position
            return pending, self._status(session, _SUCCESS)
        try:
            value = sess.attrs[attribute]
        except KeyError:
            raise self._fail(
                session,
                StatusCode.error_nonsupported_attribute,
                f"attribute {attribute!r} is not supported by {sess.attached.name!r}",
            ) from None
        return value, self._status(session, _SUCCESS)

    def set_attribute(self, session: int, attribute: Any, attribute_state: Any) -> StatusCode:
        """Store any attribute (read back by :meth:`get_attribute`); none changes timing."""
        sess = self._session(session)
        if attribute == RA.termchar:
            attribute_state = int(attribute_state)
        sess.attrs[attribute] = attribute_state
        return self._status(session, _SUCCESS)

    # -- accepted, nothing to simulate -----------------------------------------------------------
    def lock(
        self,
        session: int,
        lock_type: constants.Lock,
        timeout: int,
        requested_key: str | None = None,
    ) -> tuple[str, StatusCode]:
        self._session(session)
        key = requested_key or f"qnode-sim-{session}"
        return key, self._status(session, _SUCCESS)

    def unlock(self, session: int) -> StatusCode:
        self._session(session)
        return self._status(session, _SUCCESS)

    def enable_event(self, session: int, event_type: Any, mechanism: Any, context: Any = None):
        return self._status(session, _SUCCESS)

    def disable_event(self, session: int, event_type: Any, mechanism: Any) -> StatusCode:
        return self._status(session, _SUCCESS)

    def discard_events(self, session: int, event_type: Any, mechanism: Any) -> StatusCode:
        return self._status(session, _SUCCESS)

    def wait_on_event(self, session: int, in_event_type: Any, timeout: int):
        """No events are ever generated: times out at once."""
        raise self._fail(session, StatusCode.error_timeout, "the simulated lab raises no events")

    def gpib_control_ren(self, session: int, mode: constants.RENLineOperation) -> StatusCode:
        self._session(session)
        return self._status(session, _SUCCESS)


__all__ = ["SimulatedVisaIOError", "SimulatedVisaLibrary"]
