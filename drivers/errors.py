"""Errors raised by the instrument drivers.

Every message names the instrument (its station name and model), the command that was
being sent, and what went wrong with which value, e.g.::

    laser_a (Santec TSL-570): command ':POW 25.00' refused: 25 dBm out of range for
    'power', expected -15..13 dBm

QCoDeS appends context to an exception's ``args`` while it propagates through a
parameter; ``__str__`` therefore always returns the message built here.
"""

from __future__ import annotations


class InstrumentError(Exception):
    """Base class: something went wrong talking to one instrument. ``fault`` names the kind
    of fault in a word or two (counted by ``drivers.resilience``)."""

    fault: str = "error"

    def __init__(self, instrument: str, detail: str, command: str | None = None) -> None:
        self.instrument = instrument
        self.command = command
        self.detail = detail
        where = f"command {command!r} " if command is not None else ""
        self.message = f"{instrument}: {where}{detail}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InstrumentIdentityError(InstrumentError):
    """The instrument at the address is not the model the driver expects."""


class InstrumentTimeoutError(InstrumentError, TimeoutError):
    """The instrument did not answer (or accept a command) within the VISA timeout."""

    fault = "timeout"


class InstrumentCommunicationError(InstrumentError, ConnectionError):
    """Any other VISA I/O failure (disconnected cable, closed session, ...)."""

    fault = "connection lost"


class InstrumentReplyError(InstrumentError):
    """The instrument answered a command with an error reply (or an unparsable one)."""

    fault = "refused"


class InstrumentErrorQueueError(InstrumentReplyError):
    """The instrument's error queue (e.g. SCPI ``SYST:ERR?``) held an entry after a write."""


class InstrumentValueError(InstrumentError, ValueError):
    """A value was refused before it was sent: outside the validated physical range."""

    fault = "value refused"


class InstrumentGarbledReplyError(InstrumentReplyError):
    """A reply that was damaged on the wire: bytes no text reply holds (line noise), or a
    reply cut short (no terminator). Unlike a refusal, sending the command again may work."""

    fault = "garbled reply"


class InstrumentRebootedError(InstrumentCommunicationError):
    """The instrument rebooted (power-on flag set after a reconnect): its settings were
    re-applied, but state that settings cannot restore (e.g. qubits) is lost."""

    fault = "reboot"


#: Faults that may pass: a retry, a reconnect or a new shot can succeed after them.
TRANSIENT_ERRORS: tuple[type[InstrumentError], ...] = (
    InstrumentTimeoutError,
    InstrumentCommunicationError,
    InstrumentGarbledReplyError,
)
