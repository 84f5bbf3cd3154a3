"""Fault injection in the simulated lab: instruments that time out, drop their connection,
garble or truncate a reply, reboot, or answer too late.

A :class:`FaultyInstrument` wraps a simulated instrument (a
:class:`~sim_backend.instruments.protocols.MessageHandler`) and is attached in its place, to
the in-process VISA library or the loopback TCP server; both transports carry out what it
asks for. Faults follow rules (:class:`FaultRule`): at given message numbers (1-based,
counted per instrument), or at random with a probability per message from a seeded
generator, so a faulty dry run is reproducible. ``inject(kind)`` arms a one-off fault on the
next message (for tests).

==============  ===================================================================
kind            what the driver sees
==============  ===================================================================
``timeout``     the message is executed, its reply is lost: the read times out
``drop``        the connection breaks before the message is executed
                (``VI_ERROR_CONN_LOST`` / a reset socket); reconnecting works
``garble``      the reply arrives with some bytes replaced by line noise (>= 0x80)
``truncate``    the reply is cut short and its terminator never comes
``reboot``      the instrument power-cycles instead of executing the message: the
                connection drops and its settings are back to power-on defaults,
                with the IEEE 488.2 power-on bit (``*ESR?`` bit 7) set
``reset``       a power glitch: settings back to defaults and the power-on bit set,
                but the connection survives and the message is executed (only a
                driver that asks - ``*ESR?``, or reading its settings back - notices)
``slow``        the reply comes ``delay_s`` late: after the VISA timeout it is a
                timeout, and the late reply waits in the input buffer
==============  ===================================================================

Reply faults (timeout, garble, truncate, slow) need a reply: a rule that falls on a message
without one waits for the next message that has one. Every injected fault is logged
(:attr:`FaultyInstrument.log`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .protocols import MessageHandler

FAULT_KINDS = ("timeout", "drop", "garble", "truncate", "reboot", "reset", "slow")
#: Faults that strike before the message is executed (the connection goes down).
LINK_FAULTS = ("drop", "reboot")
#: IEEE 488.2 standard event status register: power-on bit.
POWER_ON = 0x80


class DroppedConnectionError(Exception):
    """Raised from ``handle``: the transport breaks every connection of the instrument
    (the message was not executed). New connections are accepted at once."""

    def __init__(self, instrument: str, kind: str, number: int) -> None:
        self.instrument, self.kind, self.number = instrument, kind, number
        what = "rebooted" if kind == "reboot" else "dropped its connection"
        super().__init__(f"{instrument} {what} at message {number} (fault injection)")


@dataclass(frozen=True)
class Truncated:
    """A reply cut short: the transport sends ``data`` without the terminator."""

    data: bytes


@dataclass(frozen=True)
class Late:
    """A reply that arrives ``delay_s`` after the message."""

    reply: str | bytes
    delay_s: float


@dataclass(frozen=True)
class FaultRule:
    """When one kind of fault strikes an instrument: at the listed message numbers, or with
    ``probability`` per message (none before message ``after``)."""

    kind: str
    probability: float = 0.0
    at: frozenset[int] = frozenset()
    after: int = 0
    delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r}: expected one of {FAULT_KINDS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"fault probability {self.probability!r}: expected 0..1")


@dataclass(frozen=True)
class InjectedFault:
    """One fault as it happened: which instrument, its message number, kind, message."""

    instrument: str
    number: int
    kind: str
    message: str


def power_cycle(handler: Any) -> None:
    """Back to power-on: settings to their defaults (``reset``), error queue empty, the
    power-on bit set; the lab recomputes the physics from the new settings."""
    reset = getattr(handler, "reset", None)
    if not callable(reset):
        raise ValueError(f"{handler.name}: its simulated model has no power-on state (reset)")
    reset()
    if hasattr(handler, "errors"):
        handler.errors.clear()
    if hasattr(handler, "esr"):
        handler.esr = POWER_ON
    hooks = getattr(handler, "hooks", None)
    if hooks is not None:
        hooks.settings_changed(handler.name)


def can_reboot(handler: Any) -> bool:
    """Whether ``handler`` has a power-on state to return to."""
    return callable(getattr(handler, "reset", None))


@dataclass(eq=False)
class FaultyInstrument:
    """A simulated instrument with fault injection (see the module docstring)."""

    inner: MessageHandler
    rules: tuple[FaultRule, ...] = ()
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    log: list[InjectedFault] = field(default_factory=list)
    count: int = 0
    _waiting: list[FaultRule] = field(default_factory=list, repr=False)
    _armed: list[FaultRule] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if any(r.kind in ("reboot", "reset") for r in self.rules) and not can_reboot(self.inner):
            raise ValueError(f"{self.inner.name}: cannot inject 'reboot': no power-on state")

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def termination(self) -> str:
        return getattr(self.inner, "termination", "\n")

    def __getattr__(self, attr: str) -> Any:  # status_byte, reset, ... of the instrument
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def inject(self, kind: str, delay_s: float = 30.0) -> None:
        """A one-off fault of ``kind`` on the next message (next one with a reply, for reply
        faults)."""
        self._armed.append(FaultRule(kind, delay_s=delay_s))

    def counts(self) -> dict[str, int]:
        """Injected faults by kind."""
        out: dict[str, int] = {}
        for fault in self.log:
            out[fault.kind] = out.get(fault.kind, 0) + 1
        return out

    # -- the wire ---------------------------------------------------------------------------
    def handle(self, message: str) -> str | bytes | Truncated | Late | None:
        self.count += 1
        number = self.count
        due = self._due(number)
        for glitch in [r for r in due if r.kind == "reset"]:
            due.remove(glitch)
            self._record(number, "reset", message)
            power_cycle(self.inner)
        link = next((r for r in due if r.kind in LINK_FAULTS), None)
        if link is not None:
            self._record(number, link.kind, message)
            if link.kind == "reboot":
                power_cycle(self.inner)
            raise DroppedConnectionError(self.name, link.kind, number)
        reply = self.inner.handle(message)
        self._waiting.extend(due)
        if reply is None or not self._waiting:
            return reply
        rule = self._waiting.pop(0)
        self._record(number, rule.kind, message)
        return self._damage(rule, reply)

    def _due(self, number: int) -> list[FaultRule]:
        due, self._armed = self._armed, []
        for rule in self.rules:
            if number <= rule.after:
                continue
            if rule.at:
                if number in rule.at:
                    due.append(rule)
            elif rule.probability and self.rng.random() < rule.probability:
                due.append(rule)
        return due

    def _damage(self, rule: FaultRule, reply: str | bytes) -> str | bytes | Truncated | Late | None:
        data = reply.encode("latin-1", "replace") if isinstance(reply, str) else bytes(reply)
        if rule.kind == "timeout":
            return None
        if rule.kind == "slow":
            return Late(reply, rule.delay_s)
        if rule.kind == "truncate":
            return Truncated(data[: len(data) // 2])
        noisy = bytearray(data or b"?")
        hits = self.rng.choice(len(noisy), size=max(1, len(noisy) // 8), replace=False)
        for i in hits:
            noisy[i] = int(self.rng.integers(0x80, 0x100))
        return bytes(noisy)

    def _record(self, number: int, kind: str, message: str) -> None:
        self.log.append(InjectedFault(self.name, number, kind, message[:80]))


def with_faults(
    handlers: Mapping[str, MessageHandler],
    rules: Mapping[str, Iterable[FaultRule]],
    seed: int = 0,
) -> dict[str, FaultyInstrument]:
    """Wrap every handler in ``handlers`` that has rules (by instrument name); each gets
    its own generator, derived from ``seed`` and its name, so adding a rule to one
    instrument does not change another's faults."""
    unknown = sorted(set(rules) - set(handlers))
    if unknown:
        raise ValueError(f"faults for unknown instruments {unknown}; known: {sorted(handlers)}")
    out = {}
    for name, its_rules in rules.items():
        key = [seed, *name.encode()]
        out[name] = FaultyInstrument(
            handlers[name], tuple(its_rules), np.random.default_rng(np.random.SeedSequence(key))
        )
    return out


def from_plan(
    plan: Any, handlers: Mapping[str, MessageHandler], source: str = "faults"
) -> dict[str, FaultyInstrument]:
    """The faulty instruments a validated ``sim_backend.params.FaultPlan`` asks for; a
    ``ValueError`` names the rule (``<source>.faults.<i>``), the instrument and the problem."""
    rules: dict[str, list[FaultRule]] = {}
    for i, spec in enumerate(plan.faults):
        where = f"{source}.faults.{i}"
        if spec.instrument not in handlers:
            raise ValueError(
                f"{where}.instrument: no instrument {spec.instrument!r} in this network; "
                f"expected one of {sorted(handlers)}"
            )
        if spec.kind in ("reboot", "reset") and not can_reboot(handlers[spec.instrument]):
            raise ValueError(
                f"{where}.kind: {spec.instrument!r} cannot {spec.kind!r}: its simulated model "
                "has no power-on state"
            )
        rules.setdefault(spec.instrument, []).append(
            FaultRule(spec.kind, spec.probability, frozenset(spec.at), spec.after, spec.delay_s)
        )
    return with_faults(handlers, rules, plan.seed)


def fault_counts(instruments: Iterable[FaultyInstrument]) -> dict[str, dict[str, int]]:
    """Injected faults by instrument and kind (instruments without any left out)."""
    return {inst.name: inst.counts() for inst in instruments if inst.log}


__all__ = [
    "FAULT_KINDS",
    "DroppedConnectionError",
    "FaultRule",
    "FaultyInstrument",
    "InjectedFault",
    "Late",
    "Truncated",
    "can_reboot",
    "fault_counts",
    "from_plan",
    "power_cycle",
    "with_faults",
]
