"""Common base for every qnode instrument driver.

:class:`QNodeVisaInstrument` adds to :class:`qcodes.instrument.VisaInstrument`:

* an identity check at connect time (``*IDN?`` or the model's equivalent), raising
  :class:`~drivers.errors.InstrumentIdentityError` naming expected and received identity;
* VISA timeouts and I/O failures turned into :class:`~drivers.errors.InstrumentTimeoutError` /
  :class:`~drivers.errors.InstrumentCommunicationError` naming instrument and command;
* an error check after every write: the SCPI error queue (``ERROR_QUERY``, drained until
  it reports no error) or, for models that answer every command, a reply check
  (:meth:`_check_reply`); either raises a :class:`~drivers.errors.InstrumentReplyError`;
* one lean transaction path (:meth:`QNodeVisaInstrument.ask_raw` / ``write_raw``): VISA
  traffic logged at DEBUG on QCoDeS' ``visa_log``, and safe against Ctrl-C without signal
  handlers per call (an interrupted query's reply is drained before the interrupt is raised);
* :meth:`safe_state` (abstract): lasers off/blocked, outputs off, bias to a safe value.
  It is *not* :meth:`close`: closing only releases the connection;
* fault tolerance (:mod:`drivers.resilience`): a reply damaged on the wire (non-ASCII bytes,
  or no terminator) is an :class:`~drivers.errors.InstrumentGarbledReplyError`; a timeout, a
  lost connection or a damaged reply clears or reopens the session, re-applies the last set
  values after a reboot, and retries the command with back-off unless it is listed in
  ``NOT_REPEATABLE``.

Parameters created on the instrument or on a :class:`QNodeChannel` are
:class:`CheckedParameter`: a value outside its validator raises
:class:`~drivers.errors.InstrumentValueError` naming instrument, command and value.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pyvisa.constants
import pyvisa.errors
import qcodes.validators as vals
from qcodes.instrument import InstrumentChannel, VisaInstrument
from qcodes.parameters import Parameter
from qcodes.utils import DelayedKeyboardInterrupt

from drivers.errors import (
    TRANSIENT_ERRORS,
    InstrumentCommunicationError,
    InstrumentError,
    InstrumentErrorQueueError,
    InstrumentGarbledReplyError,
    InstrumentIdentityError,
    InstrumentReplyError,
    InstrumentTimeoutError,
    InstrumentValueError,
)
from drivers.resilience import RecoveryMixin, Resilience

#: Maximum number of error-queue entries read after one write (guards against a stuck queue).
MAX_ERROR_ENTRIES = 16
#: Longest message (characters) sent without deferring SIGINT: it leaves in one library call.
ATOMIC_MESSAGE_CHARS = 4096
#: a read that filled its chunk (more to read), and what ``read_raw`` ignores while reading
_MORE_TO_READ = pyvisa.constants.StatusCode.success_max_count_read
_READ_WARNINGS = (pyvisa.constants.StatusCode.success_device_not_present, _MORE_TO_READ)
#: White space a text reply may hold (anything else below 0x20, or above 0x7E, is line noise).
_WHITESPACE = str.maketrans("", "", "\t\r\n")


def on_off(on: str = "1", off: str = "0") -> dict[bool, str]:
    """A ``val_mapping`` for boolean parameters (True -> ``on``, False -> ``off``)."""
    return {True: on, False: off}


def display_name(node: Any) -> str:
    """``"name (Model)"`` for the root instrument of a parameter, channel or instrument."""
    root = getattr(node, "root_instrument", node)
    model = getattr(root, "MODEL", "") or type(root).__name__
    return f"{root.name} ({model})"


class CheckedParameter(Parameter):
    """A QCoDeS parameter whose validation failures name instrument, command and value."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        set_cmd = kwargs.get("set_cmd")
        self._set_cmd_text = set_cmd if isinstance(set_cmd, str) else None
        self.lab_limit: tuple[float, float, str] | None = None
        super().__init__(name, *args, **kwargs)
        if self.settable:
            self.set = self._remembering(self.set)

    def _remembering(self, plain_set: Any) -> Any:
        """``set`` that also tells the instrument the value was applied (re-applied after a
        reboot, see :meth:`QNodeVisaInstrument.restore_settings`)."""

        def set_and_remember(value: Any, **kwargs: Any) -> None:
            plain_set(value, **kwargs)
            remember = getattr(self.root_instrument, "remember_setting", None)
            if remember is not None:
                remember(self, value)

        return set_and_remember

    def set_lab_limit(self, low: float, high: float, source: str) -> None:
        """A configured safety limit (e.g. a laser power a sample tolerates): no set through
        this parameter - by any sequence, script, CLI call or remote message - may exceed
        it. ``source`` names where the limit is configured (it appears in refusals)."""
        if not low <= high:
            raise ValueError(f"{source}: limit [{low}, {high}] is empty; expected low <= high")
        self.lab_limit = (float(low), float(high), source)

    def validate(self, value: Any) -> None:
        try:
            super().validate(value)
        except InstrumentValueError:
            raise
        except (ValueError, TypeError) as exc:
            raise InstrumentValueError(
                display_name(self), self._explain(value, exc), command=self._command_for(value)
            ) from exc
        if self.lab_limit is not None and isinstance(value, (int, float)):
            low, high, source = self.lab_limit
            if not low <= value <= high:
                unit = f" {self.unit}" if self.unit else ""
                raise InstrumentValueError(
                    display_name(self),
                    f"refused: {value:g}{unit} for {self.name!r} is outside the lab limit "
                    f"{low:g}..{high:g}{unit} ({source})",
                    command=self._command_for(value),
                )

    def _command_for(self, value: Any) -> str:
        if self._set_cmd_text is not None:
            scale = self.scale if isinstance(self.scale, (int, float)) else 1
            raw = value * scale if isinstance(value, (int, float)) else value
            try:
                return self._set_cmd_text.format(raw)
            except (ValueError, TypeError, IndexError, KeyError):
                pass
        return f"{self.full_name} = {value!r}"

    def _explain(self, value: Any, exc: Exception) -> str:
        validator = self.vals
        unit = f" {self.unit}" if self.unit else ""
        if isinstance(validator, (vals.Numbers, vals.Ints)) and isinstance(value, (int, float)):
            lo, hi = validator.min_value, validator.max_value
            if math.isfinite(lo) and math.isfinite(hi):
                return (
                    f"refused: {value:g}{unit} out of range for {self.name!r}, "
                    f"expected {lo:g}..{hi:g}{unit}"
                )
        reason = str(exc.args[0]) if exc.args else str(exc)
        return f"refused: {reason.split('; Parameter')[0]} (parameter {self.name!r})"


class _CheckedParameters:
    """Mixin: parameters default to :class:`CheckedParameter`."""

    def add_parameter(self, name: str, parameter_class: Any = None, **kwargs: Any) -> Any:
        cls = CheckedParameter if parameter_class is None else parameter_class
        return super().add_parameter(name, cls, **kwargs)  # type: ignore[misc]


class QNodeChannel(_CheckedParameters, InstrumentChannel):
    """Base class for instrument channels (writes and queries go through the parent)."""


class QNodeVisaInstrument(RecoveryMixin, _CheckedParameters, VisaInstrument):
    """Base class of all qnode VISA drivers; see the module docstring."""

    #: Human-readable model used in every message, e.g. ``"Santec TSL-570"``.
    MODEL: ClassVar[str] = ""
    #: Identity query and the vendor / model the reply must contain (case-insensitive).
    IDN_QUERY: ClassVar[str] = "*IDN?"
    IDN_VENDOR: ClassVar[str] = ""
    IDN_MODEL: ClassVar[str] = ""
    #: Error-queue query read after each write; ``None`` when the model has none.
    ERROR_QUERY: ClassVar[str | None] = None
    #: Commands (prefixes, as the driver spells them) that must never be sent twice: they
    #: start something or consume something (a sequence start, a gate, a qubit readout).
    NOT_REPEATABLE: ClassVar[tuple[str, ...]] = ("*TRG",)
    #: What a reboot loses that re-applying settings cannot restore (e.g. "qubit states");
    #: ``None``: the settings are the whole state.
    VOLATILE_STATE: ClassVar[str | None] = None
    #: Replies end with the read terminator (a reply without it was cut short); ``False``
    #: for models that end replies with EOI only.
    REPLIES_TERMINATED: ClassVar[bool] = True

    default_terminator = "\n"
    default_timeout = 5.0

    def __init__(self, name: str, address: str | None = None, **kwargs: Any) -> None:
        self.resilience = Resilience()
        self._applied: dict[str, tuple[CheckedParameter, Any]] = {}
        super().__init__(name, address, **kwargs)
        with self.closing_on_error():
            self.check_identity()

    @contextmanager
    def closing_on_error(self) -> Iterator[None]:
        """Close the connection if set-up I/O in ``__init__`` fails, then re-raise."""
        try:
            yield
        except Exception:
            self.close()
            raise

    @property
    def display_name(self) -> str:
        """``"name (Model)"``, the prefix of every error message."""
        return display_name(self)

    # -- identity -------------------------------------------------------------------
    def parse_identity(self, reply: str) -> tuple[str, str]:
        """Split the identity reply into (vendor, model); ``*IDN?`` is comma-separated."""
        parts = [p.strip() for p in reply.split(",")]
        return (parts[0], parts[1]) if len(parts) > 1 else ("", reply.strip())

    def get_idn(self) -> dict[str, str | None]:
        reply = self.ask(self.IDN_QUERY)
        parts: list[str | None] = [p.strip() for p in reply.split(",", 3)]
        parts += [None] * (4 - len(parts))
        return dict(zip(("vendor", "model", "serial", "firmware"), parts, strict=True))

    def check_identity(self) -> None:
        """Raise :class:`InstrumentIdentityError` if the instrument is not our model."""
        reply = self.ask(self.IDN_QUERY)
        vendor, model = self.parse_identity(reply)
        ok = self.IDN_VENDOR.lower() in vendor.lower() and self.IDN_MODEL.lower() in model.lower()
        if not ok:
            raise InstrumentIdentityError(
                self.display_name,
                f"wrong identity: expected vendor {self.IDN_VENDOR!r} model {self.IDN_MODEL!r}, "
                f"received {reply.strip()!r}",
                command=self.IDN_QUERY,
            )

    # -- communication ----------------------------------------------------------------
    def write(self, cmd: str) -> None:
        """Send a command, then check the instrument's error queue (if it has one)."""
        self._transact(cmd, self.write_raw)
        self._after_write(cmd)

    def ask(self, cmd: str) -> str:
        """Send a query and return the reply (checked by :meth:`_check_reply`)."""
        reply = self._transact(cmd, self.ask_raw)
        self._check_reply(cmd, reply)
        return reply

    def _transact(self, cmd: str, call: Any) -> Any:
        """``call(cmd)``; a transient fault goes to :attr:`resilience` (retry, reconnect)."""
        try:
            return self._attempt(cmd, call)
        except TRANSIENT_ERRORS as exc:
            if self.resilience.busy:
                raise
            return self.resilience.recover(self, cmd, call, exc)

    def _attempt(self, cmd: str, call: Any) -> Any:
        """One try of ``call(cmd)``, VISA errors and damaged replies turned into ours."""
        try:
            result = call(cmd)
        except pyvisa.errors.VisaIOError as exc:
            if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
                timeout = self.visa_handle.timeout
                secs = f"{timeout / 1000:g} s" if timeout is not None else "the VISA timeout"
                raise InstrumentTimeoutError(
                    self.display_name, f"timed out: no answer within {secs}", command=cmd
                ) from exc
            raise InstrumentCommunicationError(
                self.display_name, f"failed: VISA I/O error {exc.abbreviation}", command=cmd
            ) from exc
        except OSError as exc:  # pyvisa-py passes a dead socket's error straight through
            raise InstrumentCommunicationError(
                self.display_name, f"failed: connection lost ({exc})", command=cmd
            ) from exc
        except pyvisa.errors.InvalidSession as exc:  # a reconnect that failed left none
            raise InstrumentCommunicationError(
                self.display_name, "failed: no open session (reconnecting failed)", command=cmd
            ) from exc
        if type(result) is str and not (result.isascii() and result.isprintable()):
            bare = result.translate(_WHITESPACE)
            if not (bare.isascii() and bare.isprintable()):
                raise InstrumentGarbledReplyError(
                    self.display_name, f"gave a garbled reply {result[:40]!r}", command=cmd
                )
        return result

    def write_raw(self, cmd: str) -> None:
        """Send ``cmd`` (logged at DEBUG on QCoDeS' ``visa_log``); a write has no reply, so
        an interrupt leaves nothing pending (see :meth:`_send` for long messages)."""
        if self.visa_log.logger.isEnabledFor(logging.DEBUG):  # (adapter's, without its call)
            self.visa_log.debug("Writing: %s", cmd)
        self._send(self.visa_handle, cmd)

    def ask_raw(self, cmd: str) -> str:
        """Query; a reply without the read terminator was cut short on the wire.

        Interrupt-safe without installing signal handlers per call (QCoDeS'
        ``DelayedKeyboardInterrupt`` costs more than a simulated transaction): on a
        KeyboardInterrupt during the write or the read, the pending reply is read and
        dropped (:meth:`_drain_reply`), so the next query cannot receive this one's reply,
        and the interrupt is then raised. Traffic is logged at DEBUG on QCoDeS' ``visa_log``.
        """
        debug = self.visa_log.logger.isEnabledFor(logging.DEBUG)  # (see :meth:`write_raw`)
        if debug:
            self.visa_log.debug("Querying: %s", cmd)
        handle = self.visa_handle
        visalib = handle.visalib
        session = handle.session
        encoding = handle.encoding
        ending = handle.write_termination
        try:
            if len(cmd) <= ATOMIC_MESSAGE_CHARS and not (ending and cmd.endswith(ending)):
                # :meth:`_send` on the common path, and pyvisa's ``write`` written out: the
                # message and its terminator as bytes, to the library (pyvisa's ``write`` and
                # ``write_raw`` cost 2 k CPU instructions a query over the library's write)
                visalib.write(session, (cmd + ending).encode(encoding))
            else:  # a long message (interrupt deferred), or one pyvisa warns of
                self._send(handle, cmd)
            # The reply: the library's read of one chunk, with the warnings pyvisa's
            # ``read_raw`` ignores while it reads ignored, and ``read_raw`` for the rest of
            # a reply longer than a chunk (data blocks). ``read_raw`` is pyvisa's loop over
            # chunks (a bytearray, three enum lookups, a DEBUG log per chunk), which cost
            # more than the simulated instrument's whole answer (~20 k CPU instructions).
            with visalib.ignore_warning(session, *_READ_WARNINGS):
                raw, status = visalib.read(session, handle.chunk_size)
            if status == _MORE_TO_READ:
                raw += handle.read_raw()
        except KeyboardInterrupt:
            self._drain_reply()
            raise
        reply = self._decoded_reply(cmd, raw)
        if debug:
            self.visa_log.debug("Response: %s", reply)
        return reply

    def _send(self, handle: Any, cmd: str) -> None:
        """``handle.write(cmd)``. A short message leaves in one library call, which an
        interrupt cannot split; a long one (a socket send that may block part way) is sent
        with SIGINT deferred, so the instrument never receives half a message."""
        if len(cmd) <= ATOMIC_MESSAGE_CHARS:
            handle.write(cmd)
            return
        with DelayedKeyboardInterrupt(context={"instrument": self.name, "reason": "write"}):
            handle.write(cmd)

    def _drain_reply(self) -> None:
        """Read and drop a reply left pending by an interrupted query (waits at most the
        VISA timeout when the query never left; any I/O failure is left to the next
        transaction, whose recovery handles it)."""
        with contextlib.suppress(Exception):
            self.visa_handle.read_raw()

    def _decoded_reply(self, cmd: str, raw: bytes) -> str:
        """A raw reply as text without its terminator; one without the terminator was cut
        short on the wire (undecodable bytes are kept visible, for the garbled-reply check)."""
        handle = self.visa_handle
        reply = raw.decode(handle.encoding, errors="replace")
        term = handle.read_termination
        if not term:
            return reply
        if not self.REPLIES_TERMINATED:
            return reply.removesuffix(term)
        if not reply.endswith(term):
            error = InstrumentGarbledReplyError(
                self.display_name,
                f"gave a truncated reply {reply[:40]!r} (no terminator)",
                command=cmd,
            )
            error.fault = "truncated reply"
            raise error
        return reply[: -len(term)]

    def _check_reply(self, cmd: str, reply: str) -> None:
        """Hook for models that report errors inline in replies; default: accept."""

    def _after_write(self, cmd: str) -> None:
        if self.ERROR_QUERY is None:
            return
        entries = self.read_error_queue()
        if entries:
            raise InstrumentErrorQueueError(
                self.display_name,
                "refused: error queue reports " + "; ".join(entries),
                command=cmd,
            )

    def read_error_queue(self) -> list[str]:
        """Drain the error queue; return the entries (empty when no error)."""
        if self.ERROR_QUERY is None:
            return []
        entries: list[str] = []
        for _ in range(MAX_ERROR_ENTRIES):
            reply = self._transact(self.ERROR_QUERY, self.ask_raw).strip()
            if self.is_no_error(reply):
                break
            entries.append(reply)
        return entries

    def is_no_error(self, entry: str) -> bool:
        """SCPI: ``0,"No error"`` (also ``+0,...``)."""
        if entry.startswith("0,"):  # the common case, without splitting
            return True
        code = entry.split(",", 1)[0].strip()
        try:
            return int(code) == 0
        except ValueError:
            return False

    def _parse_float(self, reply: str, cmd: str) -> float:
        """Parse a numeric reply, raising :class:`InstrumentReplyError` if it is not one."""
        try:
            return float(reply.strip().split()[0])
        except (ValueError, IndexError) as exc:
            raise InstrumentReplyError(
                self.display_name, f"gave an unparsable reply {reply!r}", command=cmd
            ) from exc

    # -- safety -----------------------------------------------------------------------
    @abc.abstractmethod
    def safe_state(self) -> None:
        """Put the instrument in its safe state (outputs off, lasers blocked, bias safe)."""


__all__ = [
    "CheckedParameter",
    "InstrumentError",
    "QNodeChannel",
    "QNodeVisaInstrument",
    "display_name",
    "on_off",
]
