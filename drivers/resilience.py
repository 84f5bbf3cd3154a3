"""Fault tolerance of an instrument's transactions: bounded retries with back-off for commands
that are safe to repeat, reconnection after a lost connection, and re-applying the driver's
settings after a reboot. :class:`drivers.base.QNodeVisaInstrument` sends every command
through :meth:`Resilience.recover` when its first try fails with a transient fault.

What is transient (``drivers.errors.TRANSIENT_ERRORS``): a timeout, a lost connection, a
garbled or truncated reply. A refusal (error queue, error reply, a value out of range) is
not: it would fail the same way again and is raised at once.

The rules, per failed command:

1. The link is made usable again before anything else, so the *next* command works even if
   this one is not repeated: after a timeout or a damaged reply the session's input is
   cleared (a late reply must not be read as the answer to the next query); after a lost
   connection the session is reopened, and the instrument is asked whether it rebooted (the
   IEEE 488.2 power-on bit of ``*ESR?``, where the model has one). After a reboot - or after
   any reconnect to a model that cannot tell - the driver's last set values are re-applied,
   in the order they were set. A model whose state cannot be restored by settings (a
   real-time controller's qubits: ``VOLATILE_STATE``) raises
   :class:`~drivers.errors.InstrumentRebootedError` instead of carrying on.
2. A command that is not safe to repeat (``NOT_REPEATABLE``: starting a sequence, a gate, a
   readout that consumes a qubit measurement) is not sent again: the fault is raised,
   naming instrument, command and fault, and the caller aborts its shot.
3. Anything else (queries and idempotent settings) is retried up to ``RetryPolicy.retries``
   times, waiting ``first_backoff_s * factor**i`` (capped at ``max_backoff_s``) before try
   ``i + 1``; the last fault is raised with the number of retries and the back-off spent.

Nothing here sleeps in a dry run: the simulated backend gives each driver a ``sleep`` that
only records the back-off (DESIGN.md, principle 3); in the lab it is ``time.sleep``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import pyvisa.errors

from drivers.errors import (
    TRANSIENT_ERRORS,
    InstrumentCommunicationError,
    InstrumentError,
    InstrumentGarbledReplyError,
    InstrumentRebootedError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and after how long a wait, a command safe to repeat is sent again."""

    retries: int = 3
    first_backoff_s: float = 0.05
    factor: float = 2.0
    max_backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.first_backoff_s < 0 or self.factor < 1:
            raise ValueError(f"{self}: expected retries >= 0, first_backoff_s >= 0 and factor >= 1")

    def delays(self) -> tuple[float, ...]:
        """The wait before each retry, s (bounded by ``max_backoff_s``)."""
        return tuple(
            min(self.first_backoff_s * self.factor**i, self.max_backoff_s)
            for i in range(self.retries)
        )


@dataclass
class FaultStats:
    """What one instrument's transactions went through (for summaries and tests)."""

    faults: Counter[str] = field(default_factory=Counter)  # by kind, every failed try
    retries: int = 0
    recovered: int = 0  # commands that succeeded after at least one retry
    gave_up: int = 0  # commands that failed after every retry
    not_repeated: int = 0  # faults on commands that are not safe to repeat
    reconnects: int = 0
    reboots: int = 0
    reapplied: int = 0  # settings sent again after a reconnect
    backoff_s: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "faults": dict(self.faults),
            "retries": self.retries,
            "recovered": self.recovered,
            "gave_up": self.gave_up,
            "not_repeated": self.not_repeated,
            "reconnects": self.reconnects,
            "reboots": self.reboots,
            "reapplied": self.reapplied,
            "backoff_s": round(sum(self.backoff_s), 6),
        }


class ResilientInstrument(Protocol):
    """What :class:`Resilience` needs of a driver (``QNodeVisaInstrument`` provides it)."""

    display_name: str
    VOLATILE_STATE: str | None

    @property
    def reconnect_to_clear(self) -> bool: ...
    def _attempt(self, cmd: str, call: Callable[[str], Any]) -> Any: ...
    def is_repeatable(self, cmd: str) -> bool: ...
    def reconnect(self) -> None: ...
    def clear_input(self) -> None: ...
    def rebooted(self) -> bool | None: ...
    def restore_settings(self) -> int: ...


class Resilience:
    """One instrument's recovery from transient faults (see the module docstring)."""

    def __init__(
        self, policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.stats = FaultStats()
        self.busy = False  # recovering: faults inside propagate to the recovery loop
        self._restore_pending = False  # settings to re-apply before the next try
        self._lost_state = False  # a reboot not yet reported

    def recover(
        self, inst: ResilientInstrument, cmd: str, call: Callable[[str], Any], exc: InstrumentError
    ) -> Any:
        """Handle the transient fault ``exc`` of ``cmd``; return what a successful retry
        returned, or raise the last fault (annotated) if there is none."""
        stats = self.stats
        stats.faults[exc.fault] += 1
        self.busy = True
        try:
            try:
                self._restore_link(inst, exc, cmd)
            except InstrumentRebootedError:
                raise
            except TRANSIENT_ERRORS as restore_exc:
                stats.faults[restore_exc.fault] += 1
                link_down: InstrumentError | None = restore_exc
            else:
                link_down = None
            if not inst.is_repeatable(cmd):
                stats.not_repeated += 1
                raise _annotated(exc, "not repeated: the command is not safe to send twice")
            for delay in self.policy.delays():
                self.sleep(delay)
                stats.backoff_s.append(delay)
                stats.retries += 1
                try:
                    if link_down is not None:
                        self._restore_link(inst, link_down, cmd)
                        link_down = None
                    result = inst._attempt(cmd, call)
                except InstrumentRebootedError:
                    raise
                except TRANSIENT_ERRORS as again:
                    stats.faults[again.fault] += 1
                    exc = again
                    link_down = again
                    continue
                stats.recovered += 1
                return result
            stats.gave_up += 1
            waited = sum(self.policy.delays())
            raise _annotated(
                exc, f"gave up after {self.policy.retries} retries ({waited:g} s of back-off)"
            )
        finally:
            self.busy = False

    def _restore_link(self, inst: ResilientInstrument, exc: InstrumentError, cmd: str) -> None:
        """Make the session usable again after ``exc`` (see rule 1 of the module docstring);
        a failure is reported against ``cmd``, the command being recovered."""
        try:
            self._reopen(inst, exc, cmd)
        except InstrumentRebootedError:
            raise
        except TRANSIENT_ERRORS as failed:
            if failed.command == cmd:
                raise
            raise _annotated(failed, f"while recovering with {failed.command}", cmd) from None

    def _reopen(self, inst: ResilientInstrument, exc: InstrumentError, cmd: str) -> None:
        """Clear or reconnect; after a reboot (or a reconnect to a model that cannot tell)
        re-apply the settings. A restore cut short by another fault stays pending and is
        done again, in full, on the next try (the power-on flag is read only once)."""
        lost = isinstance(exc, InstrumentCommunicationError)
        if not lost and not inst.reconnect_to_clear:
            inst.clear_input()
        else:
            inst.reconnect()
            self.stats.reconnects += 1
            rebooted = inst.rebooted()
            if rebooted:
                self.stats.reboots += 1
                self._lost_state = True
            if rebooted is not False:  # rebooted, or a model that cannot tell: re-apply
                self._restore_pending = True
        if self._restore_pending:
            self.stats.reapplied += inst.restore_settings()
            self._restore_pending = False
        if self._lost_state:
            self._lost_state = False
            if inst.VOLATILE_STATE:
                raise InstrumentRebootedError(
                    inst.display_name,
                    f"failed: the instrument rebooted (power-on flag set); settings were "
                    f"re-applied but its {inst.VOLATILE_STATE} were lost",
                    command=cmd,
                )


def _power_on(reply: str, instrument: str, query: str) -> bool:
    """The power-on bit of an ``*ESR?`` reply."""
    try:
        return bool(int(reply.strip()) & ESR_POWER_ON)
    except ValueError:
        raise InstrumentGarbledReplyError(
            instrument, f"gave a garbled reply {reply[:40]!r}", command=query
        ) from None


def _annotated(exc: InstrumentError, note: str, command: str | None = None) -> InstrumentError:
    """A copy of ``exc`` (same class, instrument, fault; ``command`` if given) with ``note``
    appended."""
    new = type(exc)(exc.instrument, f"{exc.detail}; {note}", command=command or exc.command)
    new.fault = exc.fault
    new.__cause__ = exc.__cause__
    return new


#: IEEE 488.2 standard event status register: power-on bit.
ESR_POWER_ON = 0x80


class RecoveryMixin:
    """What :class:`Resilience` needs of a VISA driver (mixed into ``QNodeVisaInstrument``,
    which provides ``visa_handle``, ``display_name``, ``ERROR_QUERY``, ``NOT_REPEATABLE``,
    ``_attempt`` and ``ask_raw``)."""

    visa_handle: Any
    display_name: str
    ERROR_QUERY: ClassVar[str | None]
    NOT_REPEATABLE: ClassVar[tuple[str, ...]]
    _applied: dict[str, tuple[Any, Any]]
    resilience: Resilience
    VOLATILE_STATE: ClassVar[str | None]

    @property
    def power_on_query(self) -> str | None:
        """IEEE 488.2 ``*ESR?`` (bit 7: power on) for SCPI models (those with ``SYST:ERR?``)."""
        return "*ESR?" if self.ERROR_QUERY and "SYST:ERR" in self.ERROR_QUERY.upper() else None

    def is_repeatable(self, cmd: str) -> bool:
        """Whether ``cmd`` may be sent again after a fault (see ``NOT_REPEATABLE``)."""
        text = cmd.lstrip(" :").upper()
        return not any(text.startswith(p.lstrip(":").upper()) for p in self.NOT_REPEATABLE)

    def remember_setting(self, parameter: Any, value: Any) -> None:
        """Record a successful set (most recent last) for :meth:`restore_settings`."""
        self._applied.pop(parameter.full_name, None)
        self._applied[parameter.full_name] = (parameter, value)

    def restore_settings(self) -> int:
        """Send every remembered setting again, in the order set; returns how many."""
        applied = list(self._applied.values())
        for parameter, value in applied:
            parameter.set(value)
        return len(applied)

    def settings_lost(self) -> bool:
        """Whether a remembered setting reads back different from the value set (for
        models without a power-on flag: the instrument answers, its settings are gone)."""
        for parameter, value in list(self._applied.values()):
            if not parameter.gettable:
                continue
            now = parameter.get()
            if isinstance(value, (int, float)) and isinstance(now, (int, float)):
                if not math.isclose(now, value, rel_tol=1e-4, abs_tol=1e-9):
                    return True
            elif now != value:
                return True
        return False

    def check_health(self) -> bool:
        """Ask whether the instrument rebooted while idle (power-on flag, or settings read
        back); if so re-apply its settings (``InstrumentRebootedError`` if it also lost
        volatile state). Returns whether it had rebooted."""
        stats = self.resilience.stats
        query = self.power_on_query
        if query is not None:
            reply = self._transact(query, self.ask_raw)
            rebooted = _power_on(reply, self.display_name, query)
        else:
            rebooted = self.settings_lost()
        if not rebooted:
            return False
        stats.faults["reboot"] += 1
        stats.reboots += 1
        stats.reapplied += self.restore_settings()
        if self.VOLATILE_STATE:
            raise InstrumentRebootedError(
                self.display_name,
                f"failed: the instrument rebooted while idle; settings were re-applied but "
                f"its {self.VOLATILE_STATE} were lost",
                command=query or "(health check)",
            )
        return True

    def reconnect(self) -> None:
        """Close and reopen the VISA session (same timeout and terminations)."""
        handle = self.visa_handle
        with contextlib.suppress(pyvisa.errors.InvalidSession):  # else keep the earlier one
            self._link_timeout = handle.timeout
        timeout = getattr(self, "_link_timeout", None)
        terms = (handle.read_termination, handle.write_termination)
        with contextlib.suppress(pyvisa.errors.Error, OSError):
            handle.close()  # a broken session may not close cleanly; reopening is what matters
        try:
            handle.open()
        except (pyvisa.errors.Error, OSError) as exc:
            reason = getattr(exc, "abbreviation", None) or str(exc)
            raise InstrumentCommunicationError(
                self.display_name,
                f"failed: connection lost, and reconnecting failed ({reason})",
                command="(reconnect)",
            ) from exc
        handle.timeout = timeout
        handle.read_termination, handle.write_termination = terms

    @property
    def reconnect_to_clear(self) -> bool:
        """A raw TCP socket opened by pyvisa-py has no device clear (and its ``clear``
        spins on a socket the peer closed, as a dead link looks like a timeout there):
        a new connection is the way to a clean input."""
        handle = self.visa_handle
        return handle.resource_name.upper().endswith("::SOCKET") and type(
            handle.visalib
        ).__module__.startswith("pyvisa_py")

    def clear_input(self) -> None:
        """Device clear: discard replies that arrived late (they answer no pending query)."""

        def clear(_: str) -> None:
            with contextlib.suppress(NotImplementedError):  # pyvisa-sim has no device clear
                self.visa_handle.clear()

        self._attempt("(device clear)", clear)

    def rebooted(self) -> bool | None:
        """Whether the instrument rebooted since it was last asked (power-on bit); ``None``
        when the model cannot tell."""
        query = self.power_on_query
        if query is None:
            return None
        return _power_on(self._attempt(query, self.ask_raw), self.display_name, query)

    def _transact(self, cmd: str, call: Callable[[str], Any]) -> Any:
        raise NotImplementedError

    def _attempt(self, cmd: str, call: Callable[[str], Any]) -> Any:
        raise NotImplementedError

    def ask_raw(self, cmd: str) -> str:
        raise NotImplementedError


__all__ = ["FaultStats", "RecoveryMixin", "Resilience", "ResilientInstrument", "RetryPolicy"]
