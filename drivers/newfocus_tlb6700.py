"""New Focus TLB-6700 Velocity tunable diode laser controller, with a TLB-6704 (637 nm) head.

Command set: New Focus *TLB-6700 Velocity Tunable Laser Controller User's Manual*, remote
command reference and error-message list, as also used by public drivers for this controller
(e.g. QuTech QMI's ``tlb670x``). The commands are SCPI-like ASCII (long form as listed, short
form accepted, case-insensitive). **Every command is answered**: a query with its value, a
set command with ``OK``. Errors are kept in the controller's error buffer, read (and removed)
one at a time with ``ERRSTR?`` (``<code>, <TEXT>``; code 0 when empty). The driver checks
both: a set command answered with anything but ``OK`` is refused with that reply (and the
buffer is drained), and after an ``OK`` the buffer is read, because some faults are only
reported there (e.g. ``902, KEY ENABLE OFF`` when the output is switched on with the key
switch off, ``514, LDD MODE CHANGE`` when a mode change turned the diode off).

The controller's own remote port is USB through Newport's USB driver, which carries exactly
these ASCII messages (replies end in CR LF); a lab bridge (or the simulated lab) serves them
as a VISA resource, and this driver ends its messages in CR LF too.

===============================  ===========================================  ======
command                          meaning                                      unit
===============================  ===========================================  ======
``*IDN?``                        ``New_Focus 6700 v<fw> <date> SN<serial>``
``ERRSTR?``                      next error-buffer entry, ``0, NO ERROR``
``SYSTem:MCONtrol REM|LOC`` /?   remote (front panel locked) / local control
``SOURce:WAVElength <x>`` / ?    wavelength setpoint                          nm
``SENSe:WAVElength?``            measured wavelength                          nm
``SOURce:CPOWer 0|1`` / ?        constant-power (1) / constant-current (0)
``SOURce:POWer:DIODe <x>`` / ?   diode power setpoint (constant-power mode)   mW
``SENSe:POWer:DIODe?``           measured diode power                         mW
``SOURce:CURRent:DIODe <x>`` /?  diode current setpoint (constant-current)    mA
``SENSe:CURRent:DIODe?``         measured diode current                       mA
``OUTPut:STATe 0|1`` / ?         laser diode off / on
``OUTPut:TRACk 0|1`` / ?         wavelength track (servo on the setpoint)
===============================  ===========================================  ======

Setting ``SOURce:WAVElength`` moves the laser to the new setpoint; ``OUTPut:TRACk 1`` keeps it
servoed there with the internal wavelength meter.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import qcodes.validators as vals

from drivers.base import QNodeVisaInstrument, on_off
from drivers.errors import InstrumentError, InstrumentReplyError

#: Tuning range of the TLB-6704 head (nm).
TLB6704_WAVELENGTH_RANGE_NM = (632.5, 639.0)

#: An error-buffer entry as a reply: ``<code>, <TEXT>``.
_ERROR_ENTRY = re.compile(r"^\s*[-+]?\d+\s*,\s*[A-Za-z]")
_IDENTITY = re.compile(r"^\s*(New[ _]?Focus)\s+(\S+)\s*(.*)$", re.IGNORECASE)


class NewFocusTLB6700(QNodeVisaInstrument):
    """New Focus TLB-6700 Velocity controller; fulfils :class:`drivers.hal.Laser`.

    Args:
        wavelength_range_nm: tuning range of the connected head (default the TLB-6704).
        power_range_mw: accepted diode power setpoints (configured limit, mW).
        current_range_ma: accepted diode current setpoints (configured limit, mA).
        remote_control: put the controller in remote mode at connect
            (``SYSTem:MCONtrol REM``: the front panel is locked while the node runs it).
    """

    MODEL = "New Focus TLB-6700"
    IDN_VENDOR = "NewFocus"
    IDN_MODEL = "6700"
    ERROR_QUERY = "ERRSTR?"
    default_terminator = "\r\n"

    def __init__(
        self,
        name: str,
        address: str | None = None,
        wavelength_range_nm: tuple[float, float] = TLB6704_WAVELENGTH_RANGE_NM,
        power_range_mw: tuple[float, float] = (0.0, 10.0),
        current_range_ma: tuple[float, float] = (0.0, 100.0),
        remote_control: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, address, **kwargs)
        with self.closing_on_error():
            if remote_control:
                self.write("SYSTem:MCONtrol REM")

        self.control_mode = self.add_parameter(
            "control_mode",
            label="Remote / local control",
            get_cmd="SYSTem:MCONtrol?",
            set_cmd="SYSTem:MCONtrol {}",
            get_parser=lambda reply: reply.strip().upper()[:3],
            vals=vals.Enum("REM", "LOC"),
        )
        self.wavelength = self.add_parameter(
            "wavelength",
            unit="nm",
            label="Wavelength setpoint",
            get_cmd="SOURce:WAVElength?",
            set_cmd="SOURce:WAVElength {:.3f}",
            get_parser=float,
            vals=vals.Numbers(*wavelength_range_nm),
        )
        self.wavelength_actual = self.add_parameter(
            "wavelength_actual",
            unit="nm",
            label="Measured wavelength",
            get_cmd="SENSe:WAVElength?",
            set_cmd=False,
            get_parser=float,
        )
        self.constant_power = self.add_parameter(
            "constant_power",
            label="Constant-power mode (else constant current)",
            get_cmd="SOURce:CPOWer?",
            set_cmd="SOURce:CPOWer {}",
            val_mapping=on_off(),
        )
        self.power = self.add_parameter(
            "power",
            unit="mW",
            label="Diode power setpoint",
            get_cmd="SOURce:POWer:DIODe?",
            set_cmd="SOURce:POWer:DIODe {:.2f}",
            get_parser=float,
            vals=vals.Numbers(*power_range_mw),
        )
        self.power_actual = self.add_parameter(
            "power_actual",
            unit="mW",
            label="Measured diode power",
            get_cmd="SENSe:POWer:DIODe?",
            set_cmd=False,
            get_parser=float,
        )
        self.current = self.add_parameter(
            "current",
            unit="mA",
            label="Diode current setpoint",
            get_cmd="SOURce:CURRent:DIODe?",
            set_cmd="SOURce:CURRent:DIODe {:.1f}",
            get_parser=float,
            vals=vals.Numbers(*current_range_ma),
        )
        self.current_actual = self.add_parameter(
            "current_actual",
            unit="mA",
            label="Measured diode current",
            get_cmd="SENSe:CURRent:DIODe?",
            set_cmd=False,
            get_parser=float,
        )
        self.output = self.add_parameter(
            "output",
            label="Laser diode on",
            get_cmd="OUTPut:STATe?",
            set_cmd="OUTPut:STATe {}",
            val_mapping=on_off(),
        )
        self.track = self.add_parameter(
            "track",
            label="Wavelength track",
            get_cmd="OUTPut:TRACk?",
            set_cmd="OUTPut:TRACk {}",
            val_mapping=on_off(),
        )

    # -- identity: "New_Focus 6700 v2.4 03/19/14 SN1012" (space-separated) ---------------
    def parse_identity(self, reply: str) -> tuple[str, str]:
        match = _IDENTITY.match(reply)
        if match is not None:
            return "NewFocus", match.group(2)
        parts = reply.split()
        return (parts[0], parts[1]) if len(parts) > 1 else ("", reply.strip())

    def get_idn(self) -> dict[str, str | None]:
        reply = self.ask(self.IDN_QUERY).strip()
        match = _IDENTITY.match(reply)
        if match is None:
            return {"vendor": None, "model": reply, "serial": None, "firmware": None}
        rest = match.group(3).split()
        serial = next((word for word in rest if word.upper().startswith("SN")), None)
        firmware = " ".join(word for word in rest if word != serial) or None
        return {
            "vendor": "New Focus",
            "model": match.group(2),
            "serial": serial,
            "firmware": firmware,
        }

    # -- every command is answered ---------------------------------------------------------
    def write(self, cmd: str) -> None:
        """Send a set command; the reply must be ``OK``, then the error buffer must be empty."""
        reply = self._transact(cmd, self.ask_raw)
        if reply.strip().upper() != "OK":
            self._refused(cmd, reply)
        self._after_write(cmd)

    def _check_reply(self, cmd: str, reply: str) -> None:
        """A query answered with an error entry instead of a value is refused."""
        if cmd != self.ERROR_QUERY and _ERROR_ENTRY.match(reply) and not self.is_no_error(reply):
            self._refused(cmd, reply)

    def _refused(self, cmd: str, reply: str) -> NoReturn:
        entries = [e for e in self.read_error_queue() if e != reply.strip()]
        detail = f"refused: instrument replied {reply.strip()!r}"
        if entries:
            detail += "; error buffer reports " + "; ".join(entries)
        raise InstrumentReplyError(self.display_name, detail, command=cmd)

    # -- hal.Laser --------------------------------------------------------------------------
    def set_wavelength_nm(self, wavelength_nm: float) -> None:
        self.wavelength.set(wavelength_nm)

    def get_wavelength_nm(self) -> float:
        return float(self.wavelength.get())

    def set_power_mw(self, power_mw: float) -> None:
        """Set the diode power setpoint; refused in constant-current mode, where it has no
        effect (switch with ``constant_power``: the controller turns the diode off then)."""
        if not self.constant_power.get():
            raise InstrumentError(
                self.display_name,
                f"refused: a {power_mw:g} mW setpoint has no effect in constant-current mode; "
                "set constant_power to True first (this turns the diode off)",
                command=f"SOURce:POWer:DIODe {power_mw:.2f}",
            )
        self.power.set(power_mw)

    def get_power_mw(self) -> float:
        return float(self.power.get())

    def set_output(self, on: bool) -> None:
        self.output.set(bool(on))

    def is_output_on(self) -> bool:
        return bool(self.output.get())

    def safe_state(self) -> None:
        """Laser diode off (``OUTPut:STATe 0``); the setpoints are kept."""
        self.output.set(False)
