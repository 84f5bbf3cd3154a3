"""ID Quantique ID900 Time Controller: inputs, counters, delays, histograms, coincidences
and time tags.

Command set: ID Quantique *ID900 Time Controller User Manual*, chapter "Remote control /
SCPI commands" (blocks ``INPUt``, ``DELAY``, ``TSCOmbiner``, ``TSGEnerator``,
``HISTogram``, ``RAW``). On the unit the SCPI port is a ZeroMQ REQ/REP socket (TCP 5555),
so **every command is answered** and errors come back in the reply (``...SCPI_ERR...``)
rather than through an error queue; in the lab a VISA message resource bridges to that
socket. Time tags are read per input with ``RAW<n>:DATA?`` as an ASCII list of
picosecond timestamps (this driver's reading of the RAW block; the unit can also stream
them in binary).

===============================  ==========================================  =======
command                          meaning                                     unit
===============================  ==========================================  =======
``*IDN?``                        ``ID Quantique,ID900,<serial>,<fw>``
``INPU<n>:ENAB ON|OFF`` / ?      input enabled
``INPU<n>:COUP AC|DC`` / ?       coupling
``INPU<n>:EDGE RISING|FALLING``  discriminator edge (and ``?``)
``INPU<n>:THRE <x>V`` / ?        discriminator threshold (reply ``x V``)     V
``INPU<n>:COUN:INTE <x>`` / ?    counter integration time                    ms
``INPU<n>:COUN?``                counts in the last integration window
``DELAY<n>:INPO:LINK INPU<n>``   route input n through delay block n
``DELAY<n>:VALUE <x>`` / ?       input delay                                 ps
``TSCO5:WIND:BEGIN:DELAY <x>``   coincidence window start (and ``?``)        ps
``TSCO5:WIND:END:DELAY <x>``     coincidence window end (and ``?``)          ps
``TSGE8:ENAB ON|OFF`` / ?        acquisition gate (histograms, counters)
``HIST<m>:INPO:REF:LINK <b>``    histogram start block, e.g. ``INPU1``
``HIST<m>:INPO:STOP:LINK <b>``   histogram stop block
``HIST<m>:MIN|BWID|BCOU <x>``    first bin (ps), bin width (ps), bin count
``HIST<m>:DATA?`` / ``FLUS``     histogram ``[c0,c1,...]`` / clear
``RAW<n>:DATA?``                 time tags of input n ``[t0,t1,...]``        ps
===============================  ==========================================  =======
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import qcodes.validators as vals
from qcodes.instrument import ChannelList

from drivers.base import QNodeChannel, QNodeVisaInstrument, on_off
from drivers.errors import InstrumentReplyError, InstrumentValueError
from drivers.hal import TAG_DTYPE

INPUTS = (1, 2, 3, 4)
HISTOGRAMS = (1, 2, 3, 4)
BLOCKS = ("NONE", "STAR", "INPU1", "INPU2", "INPU3", "INPU4", "TSCO5", "TSCO6", "TSCO7")


def _strip_unit(unit: str) -> Any:
    def parse(reply: str) -> float:
        return float(reply.strip().removesuffix(unit).strip())

    return parse


class ID900Input(QNodeChannel):
    """One input: discriminator, delay and counter."""

    def __init__(self, parent: IDQuantiqueID900, name: str, channel: int) -> None:
        super().__init__(parent, name)
        self.channel = n = channel
        self.enabled = self.add_parameter(
            "enabled",
            label="Input enabled",
            get_cmd=f"INPU{n}:ENAB?",
            set_cmd=f"INPU{n}:ENAB {{}}",
            val_mapping=on_off("ON", "OFF"),
        )
        self.coupling = self.add_parameter(
            "coupling",
            label="Coupling",
            get_cmd=f"INPU{n}:COUP?",
            set_cmd=f"INPU{n}:COUP {{}}",
            vals=vals.Enum("AC", "DC"),
        )
        self.edge = self.add_parameter(
            "edge",
            label="Discriminator edge",
            get_cmd=f"INPU{n}:EDGE?",
            set_cmd=f"INPU{n}:EDGE {{}}",
            vals=vals.Enum("RISING", "FALLING"),
        )
        self.threshold = self.add_parameter(
            "threshold",
            unit="V",
            label="Discriminator threshold",
            get_cmd=f"INPU{n}:THRE?",
            set_cmd=f"INPU{n}:THRE {{:.3f}}V",
            get_parser=_strip_unit("V"),
            vals=vals.Numbers(-2.0, 2.0),
        )
        self.integration_time = self.add_parameter(
            "integration_time",
            unit="ms",
            label="Counter integration time",
            get_cmd=f"INPU{n}:COUN:INTE?",
            set_cmd=f"INPU{n}:COUN:INTE {{:d}}",
            get_parser=lambda s: int(float(s)),
            vals=vals.Ints(1, 65_535),
        )
        self.counts = self.add_parameter(
            "counts",
            label="Counts in the last integration window",
            get_cmd=f"INPU{n}:COUN?",
            set_cmd=False,
            get_parser=lambda s: int(float(s)),
        )
        self.delay = self.add_parameter(
            "delay",
            unit="ps",
            label="Input delay",
            get_cmd=f"DELAY{n}:VALUE?",
            set_cmd=f"DELAY{n}:VALUE {{:d}}",
            get_parser=lambda s: int(float(s.strip().rstrip("TB"))),
            vals=vals.Ints(0, 4_000_000),
        )

    def count_rate(self) -> float:
        """Counts per second over the last integration window."""
        return self.counts.get() / (self.integration_time.get() / 1e3)


class ID900Histogram(QNodeChannel):
    """One start-stop histogram block."""

    def __init__(self, parent: IDQuantiqueID900, name: str, index: int) -> None:
        super().__init__(parent, name)
        self.index = m = index
        self.reference = self.add_parameter(
            "reference",
            label="Start block",
            get_cmd=f"HIST{m}:INPO:REF:LINK?",
            set_cmd=f"HIST{m}:INPO:REF:LINK {{}}",
            vals=vals.Enum(*BLOCKS),
        )
        self.stop = self.add_parameter(
            "stop",
            label="Stop block",
            get_cmd=f"HIST{m}:INPO:STOP:LINK?",
            set_cmd=f"HIST{m}:INPO:STOP:LINK {{}}",
            vals=vals.Enum(*BLOCKS),
        )
        self.minimum = self.add_parameter(
            "minimum",
            unit="ps",
            label="First bin start",
            get_cmd=f"HIST{m}:MIN?",
            set_cmd=f"HIST{m}:MIN {{:d}}",
            get_parser=lambda s: int(float(s)),
            vals=vals.Ints(0, 10**12),
        )
        self.bin_width = self.add_parameter(
            "bin_width",
            unit="ps",
            label="Bin width",
            get_cmd=f"HIST{m}:BWID?",
            set_cmd=f"HIST{m}:BWID {{:d}}",
            get_parser=lambda s: int(float(s)),
            vals=vals.Ints(1, 10**9),
        )
        self.bin_count = self.add_parameter(
            "bin_count",
            label="Number of bins",
            get_cmd=f"HIST{m}:BCOU?",
            set_cmd=f"HIST{m}:BCOU {{:d}}",
            get_parser=lambda s: int(float(s)),
            vals=vals.Ints(1, 16_384),
        )

    def data(self) -> npt.NDArray[np.int64]:
        """Counts per bin."""
        cmd = f"HIST{self.index}:DATA?"
        return self.root_instrument.parse_list(self.ask(cmd), cmd)

    def bin_edges_ps(self) -> npt.NDArray[np.int64]:
        start, width, count = self.minimum.get(), self.bin_width.get(), self.bin_count.get()
        return start + width * np.arange(count + 1, dtype=np.int64)

    def flush(self) -> None:
        self.write(f"HIST{self.index}:FLUS")


class IDQuantiqueID900(QNodeVisaInstrument):
    """ID Quantique ID900 Time Controller; fulfils :class:`drivers.hal.TimeTagger`."""

    MODEL = "ID Quantique ID900"
    IDN_VENDOR = "ID"
    IDN_MODEL = "ID900"

    def __init__(self, name: str, address: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, address, **kwargs)
        inputs = ChannelList(self, "inputs", ID900Input)
        for n in INPUTS:
            channel = ID900Input(self, f"input{n}", n)
            inputs.append(channel)
            self.add_submodule(f"input{n}", channel)
        self.inputs = self.add_submodule("inputs", inputs.to_channel_tuple())
        histograms = ChannelList(self, "histograms", ID900Histogram)
        for m in HISTOGRAMS:
            histogram = ID900Histogram(self, f"hist{m}", m)
            histograms.append(histogram)
            self.add_submodule(f"hist{m}", histogram)
        self.histograms = self.add_submodule("histograms", histograms.to_channel_tuple())
        self.coincidence_begin = self.add_parameter(
            "coincidence_begin",
            unit="ps",
            label="Coincidence window start",
            get_cmd="TSCO5:WIND:BEGIN:DELAY?",
            set_cmd="TSCO5:WIND:BEGIN:DELAY {:d}",
            get_parser=lambda s: int(float(s)),
            vals=vals.Ints(0, 10**9),
        )
        self.coincidence_end = self.add_parameter(
            "coincidence_end",
            unit="ps",
            label="Coincidence window end",
            get_cmd="TSCO5:WIND:END:DELAY?",
            set_cmd="TSCO5:WIND:END:DELAY {:d}",
            get_parser=lambda s: int(float(s)),
            vals=vals.Ints(0, 10**9),
        )
        self.acquisition = self.add_parameter(
            "acquisition",
            label="Acquisition gate (TSGE8) on",
            get_cmd="TSGE8:ENAB?",
            set_cmd="TSGE8:ENAB {}",
            val_mapping=on_off("ON", "OFF"),
        )

    def write(self, cmd: str) -> None:
        """Every command is answered (REQ/REP); the reply is checked for an error."""
        self.ask(cmd)

    def _check_reply(self, cmd: str, reply: str) -> None:
        if "SCPI_ERR" in reply.upper():
            raise InstrumentReplyError(
                self.display_name, f"refused: instrument replied {reply.strip()!r}", command=cmd
            )

    def parse_list(self, reply: str, cmd: str) -> npt.NDArray[np.int64]:
        """``'[1,2,3]'`` -> ``array([1, 2, 3])``; an empty list gives an empty array."""
        text = reply.strip().removeprefix("[").removesuffix("]").strip()
        try:
            return np.array([int(float(x)) for x in text.split(",") if x.strip()], dtype=np.int64)
        except ValueError as exc:
            raise InstrumentReplyError(
                self.display_name, f"gave an unparsable list {reply[:60]!r}", command=cmd
            ) from exc

    def input(self, channel: int) -> ID900Input:
        if channel not in INPUTS:
            raise InstrumentValueError(
                self.display_name, f"has no input {channel}; inputs are {INPUTS}"
            )
        return self.inputs[channel - 1]

    # -- hal.TimeTagger ------------------------------------------------------------------
    def configure_channel(
        self, channel: int, threshold_v: float, delay_ps: int = 0, enabled: bool = True
    ) -> None:
        inp = self.input(channel)
        inp.threshold.set(threshold_v)
        self.write(f"DELAY{channel}:INPO:LINK INPU{channel}")
        inp.delay.set(int(delay_ps))
        inp.enabled.set(bool(enabled))

    def count_rates_hz(self) -> dict[int, float]:
        """Count rate of every enabled input."""
        return {inp.channel: inp.count_rate() for inp in self.inputs if inp.enabled.get()}

    def set_coincidence_window_ps(self, window_ps: int) -> None:
        self.coincidence_begin.set(0)
        self.coincidence_end.set(int(window_ps))

    def read_tags(self) -> npt.NDArray[np.void]:
        """Time tags of all enabled inputs as a ``TAG_DTYPE`` array sorted by time."""
        parts = []
        for inp in self.inputs:
            if not inp.enabled.get():
                continue
            cmd = f"RAW{inp.channel}:DATA?"
            times = self.parse_list(self.ask(cmd), cmd)
            tags = np.empty(len(times), dtype=TAG_DTYPE)
            tags["channel"], tags["time_ps"] = inp.channel, times
            parts.append(tags)
        tags = np.concatenate(parts) if parts else np.empty(0, dtype=TAG_DTYPE)
        return tags[np.argsort(tags["time_ps"], kind="stable")]

    def safe_state(self) -> None:
        """Acquisition gate off (the ID900 drives no optics or bias)."""
        self.acquisition.set(False)
