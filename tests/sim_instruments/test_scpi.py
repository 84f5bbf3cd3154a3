"""The SCPI base of simulated instruments: patterns, arguments, error queue, 488.2 commands."""

from __future__ import annotations

import pytest

from sim_backend.instruments.protocols import MessageHandler, NullLabHooks
from sim_backend.instruments.scpi import (
    Boolean,
    Call,
    Choice,
    Integer,
    Number,
    ScpiError,
    ScpiInstrument,
    Setting,
    String,
    command,
    compile_pattern,
    format_error,
    parse_block,
)


class RecordingHooks(NullLabHooks):
    def __init__(self) -> None:
        self.changed: list[str] = []

    def settings_changed(self, instrument: str) -> None:
        self.changed.append(instrument)


class ToySource(ScpiInstrument):
    """A two-channel source, written the way a manual lists its commands."""

    IDN = "Acme,SRC-2,0042,1.3"

    frequency = Setting("[:SOURce]:FREQuency[:CW]", Number(1e6, 20e9, unit="HZ"), 1e9)
    power = Setting("[:SOURce]:POWer[:LEVel]", Number(-120, 25, unit="DBM"), -30.0)
    output = Setting("OUTPut#[:STATe]", Boolean(), False, suffixes=(1, 2))
    delay = Setting("SOURce#:MARKer#:DELay", Number(0, 1, unit="S"), 0.0, suffixes=(1, 2))
    count = Setting("TRIGger:COUNt", Integer(1, 1000), 1)
    source = Setting("TRIGger:SOURce", Choice("INTernal", "EXTernal", "BUS"), "INT")
    label = Setting("DISPlay:TEXT", String(max_length=8), "")
    temperature = Setting("SYSTem:TEMPerature", Number(), 25.0, readonly=True)

    def __init__(self, name: str = "src", hooks: NullLabHooks | None = None) -> None:
        super().__init__(name, hooks)
        self.data = b""
        self.resets = 0
        self.triggers = 0

    @command("TRACe:DATA")
    def trace_data(self, call: Call) -> None:
        call.expect_args(2)  # "<name>",<block>
        self.data = call.block(1)

    @command("TRACe:DATA?")
    def trace_data_query(self, call: Call) -> str:
        return f"#1{len(self.data)}" + self.data.decode("latin-1")

    @command("MEASure:POWer#?", suffixes=(1, 2))
    def measure_power(self, call: Call) -> float:
        return self.power - call.suffix  # not a str: the base converts

    def reset(self) -> None:
        super().reset()
        self.resets += 1

    def trigger(self) -> None:
        self.triggers += 1


@pytest.fixture
def src() -> ToySource:
    return ToySource()


def errors_of(inst: ScpiInstrument) -> list[str]:
    """Drain the error queue over the wire."""
    found = []
    while (entry := inst.handle("SYST:ERR?")) != '0,"No error"':
        assert entry is not None
        found.append(entry)
    return found


def codes_of(inst: ScpiInstrument) -> list[int]:
    return [int(e.split(",", 1)[0]) for e in errors_of(inst)]


# -- patterns -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        ":SOURce:FREQuency:CW",
        ":SOUR:FREQ:CW",
        "SOUR:FREQ",
        ":FREQ",
        "FREQ",
        "freq:cw",
        "Source:Frequency",
        ":sOuR:fReQ",
    ],
)
def test_long_and_short_forms_any_case_optional_nodes_and_colon(src: ToySource, header: str):
    assert src.handle(f"{header} 2.5e9") is None
    assert src.frequency == 2.5e9
    assert src.handle(f"{header}?") == "2500000000"
    assert errors_of(src) == []


@pytest.mark.parametrize("header", ["FREQU", "SOURC:FREQ", "FRE", "SOUR::FREQ", "CW", "FREQ:C"])
def test_forms_between_short_and_long_are_undefined_headers(src: ToySource, header: str):
    assert src.handle(f"{header} 2e9") is None
    assert errors_of(src) == [f'-113,"Undefined header;{header}"']
    assert src.frequency == 1e9


def test_numeric_suffixes_default_to_one_and_are_checked(src: ToySource):
    src.handle("OUTP2 ON")
    src.handle("OUTP:STAT 1")
    assert src.output == {1: True, 2: True}
    src.handle("OUTP1 OFF")
    assert src.handle("OUTP1?") == "0"
    assert src.handle("OUTPut2:STATe?") == "1"
    assert src.handle("OUTP3 ON") is None
    assert codes_of(src) == [-114]
    src.handle("SOUR2:MARK1:DEL 0.25")
    assert src.delay[(2, 1)] == 0.25
    assert src.handle("SOURCE2:MARKER1:DELAY?") == "0.25"
    assert src.handle("SOUR:MARK2:DEL?") == "0"
    assert src.handle("MEAS:POW2?") == "-32.0"


def test_query_and_set_forms_are_distinct(src: ToySource):
    assert src.handle("*IDN") is None  # the set form does not exist
    assert src.handle("*RST?") is None
    assert src.handle("SYST:TEMP 30") is None  # readonly setting: query form only
    assert codes_of(src) == [-113, -113, -113]
    assert src.handle("SYST:TEMP?") == "25"


def test_compile_pattern_rejects_malformed_patterns():
    with pytest.raises(ValueError, match="bad SCPI pattern"):
        compile_pattern("[:SOURce:FREQuency")
    with pytest.raises(ValueError, match="unbalanced"):
        compile_pattern("SOURce]:FREQuency")
    with pytest.raises(ValueError, match="bad SCPI pattern"):
        compile_pattern("SOUR/FREQ")
    regex, query = compile_pattern("*IDN?")
    assert query and regex.fullmatch(":*idn")


def test_a_malformed_pattern_fails_at_class_definition():
    with pytest.raises(ValueError, match="bad SCPI pattern"):

        class Broken(ScpiInstrument):  # noqa: F841
            x = Setting("[:FOO", Number(), 0)


# -- arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2.5e9", 2.5e9),
        ("2.5 GHz", 2.5e9),
        ("10MHZ", 10e6),
        ("10 mhz", 10e6),
        ("5000kHz", 5e6),
        ("+1e6", 1e6),
        ("MIN", 1e6),
        ("maximum", 20e9),
        ("DEF", 1e9),
    ],
)
def test_numbers_accept_units_prefixes_and_keywords(src: ToySource, text: str, value: float):
    src.handle(f"FREQ {text}")
    assert errors_of(src) == []
    assert src.frequency == pytest.approx(value)


def test_milli_is_m_for_other_units(src: ToySource):
    src.handle("SOUR:MARK:DEL 250 ms")
    assert src.delay[(1, 1)] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("30e9", -222),
        ("0.5", -222),
        ("ABC", -224),
        ('"1e9"', -104),
        ("1e9 V", -131),
        ("1.2.3", -120),
        ("INF", -224),
    ],
)
def test_bad_numbers_queue_the_right_error_and_change_nothing(src: ToySource, text: str, code: int):
    assert src.handle(f"FREQ {text}") is None
    assert codes_of(src) == [code]
    assert src.frequency == 1e9


def test_out_of_range_error_names_value_and_limits(src: ToySource):
    src.handle("POW 30")
    assert errors_of(src) == ['-222,"Data out of range;30 outside -120..25 DBM"']


def test_query_min_max(src: ToySource):
    assert src.handle("POW? MIN") == "-120"
    assert src.handle("POW? MAX") == "25"
    assert src.handle("POW? 3") is None
    assert codes_of(src) == [-108]


def test_parameter_count(src: ToySource):
    src.handle("POW")
    src.handle("POW 1,2")
    assert codes_of(src) == [-109, -108]


def test_integers_round_and_check_range(src: ToySource):
    src.handle("TRIG:COUN 2.6")
    assert src.count == 3 and isinstance(src.count, int)
    src.handle("TRIG:COUN 0")
    assert codes_of(src) == [-222]


@pytest.mark.parametrize(
    ("text", "value"),
    [("ON", True), ("off", False), ("1", True), ("0", False), ("2", True), ("0.2", False)],
)
def test_booleans(src: ToySource, text: str, value: bool):
    src.handle(f"OUTP {text}")
    assert src.output[1] is value
    assert errors_of(src) == []


def test_bad_boolean_is_an_illegal_parameter(src: ToySource):
    src.handle("OUTP MAYBE")
    assert codes_of(src) == [-224]


def test_choices_take_long_or_short_forms_and_reply_short(src: ToySource):
    src.handle("TRIG:SOUR external")
    assert src.source == "EXT"
    assert src.handle("TRIG:SOUR?") == "EXT"
    src.handle("TRIG:SOUR EXTERN")
    assert errors_of(src) == [
        '-224,"Illegal parameter value;expected one of INTernal, EXTernal, BUS, got EXTERN"'
    ]


def test_strings_are_quoted_both_ways(src: ToySource):
    src.handle('DISP:TEXT "a;b,c"')
    assert src.label == "a;b,c"
    assert src.handle("DISP:TEXT?") == '"a;b,c"'
    src.handle("DISP:TEXT 'it''s'")
    assert src.label == "it's"
    src.handle("DISP:TEXT unquoted")
    src.handle('DISP:TEXT "far too long"')
    assert codes_of(src) == [-104, -224]


def test_blocks_keep_every_byte_even_separators_and_white_space(src: ToySource):
    payload = bytes(range(256)) + b' ;,"\r\n '
    text = payload.decode("latin-1")
    message = f'TRAC:DATA "wave",#3{len(payload)}{text};*OPC?'
    assert src.handle(message) == "1"
    assert src.data == payload
    assert errors_of(src) == []


def test_parse_block():
    assert parse_block("#15hello") == b"hello"
    assert parse_block("#0abc") == b"abc"
    with pytest.raises(ScpiError) as info:
        parse_block("#19abc")
    assert info.value.code == -161
    with pytest.raises(ScpiError):
        parse_block("hello")


def test_helpers_raise_scpi_errors():
    with pytest.raises(ScpiError) as info:
        Number(0, 1, unit="V").parse("2")
    assert info.value.code == -222
    assert str(info.value) == '-222,"Data out of range;2 outside 0..1 V"'
    assert Call("X", "1, 2 ,3", False, ()).args == ["1", "2", "3"]
    assert Call("X", "", False, ()).args == []
    assert Call("X", "5 mV", False, ()).number(0, 1, unit="V") == pytest.approx(0.005)
    assert Call("X", "ON", False, ()).boolean() is True
    assert Call("X", "int", False, ()).choice("INTernal", "EXTernal") == "INT"
    with pytest.raises(ScpiError) as info:
        Call("X", "", False, ()).arg()
    assert info.value.code == -109


# -- error queue, status and common commands ----------------------------------------------
def test_error_queue_is_fifo_and_reports_no_error_when_empty(src: ToySource):
    assert src.handle("SYST:ERR?") == '0,"No error"'
    src.handle("FOO")
    src.handle("POW 99")
    src.handle("OUTP MAYBE")
    assert src.handle("SYSTem:ERRor:COUNt?") == "3"
    assert src.handle("SYSTEM:ERROR:NEXT?") == '-113,"Undefined header;FOO"'
    assert src.handle(":SYST:ERR?").startswith("-222,")
    assert src.handle("syst:err?").startswith("-224,")
    assert src.handle("SYST:ERR?") == '0,"No error"'


def test_error_queue_overflow_replaces_the_last_entry(src: ToySource):
    for _ in range(src.ERROR_QUEUE_SIZE + 5):
        src.handle("FOO")
    codes = codes_of(src)
    assert len(codes) == src.ERROR_QUEUE_SIZE
    assert codes[-1] == -350 and set(codes[:-1]) == {-113}


def test_cls_clears_errors_and_event_status(src: ToySource):
    src.handle("FOO")
    src.handle("POW 99")
    assert int(src.handle("*STB?") or "0") & 0x04  # error available
    assert src.handle("*ESR?") == str(0x20 | 0x10)  # command error, execution error
    assert src.handle("*ESR?") == "0"  # reading clears it
    src.handle("FOO")
    src.handle("*CLS")
    assert src.handle("SYST:ERR?") == '0,"No error"'
    assert src.handle("*ESR?") == "0"


def test_status_byte_summary_bits(src: ToySource):
    src.handle("*ESE 32;*SRE 32")
    assert src.handle("*ESE?;*SRE?") == "32;32"
    assert src.status_byte() == 0
    src.handle("FOO")
    assert src.status_byte() == 0x04 | 0x20 | 0x40
    src.handle("*ESE 300")
    assert codes_of(src) == [-113, -222]


def test_idn_opc_tst_trg(src: ToySource):
    assert src.handle("*IDN?") == "Acme,SRC-2,0042,1.3"
    src.idn = "Acme,SRC-2,0043,1.3"
    assert src.handle("*idn?") == "Acme,SRC-2,0043,1.3"
    assert src.handle("*OPC?") == "1"
    assert src.handle("*TST?") == "0"
    src.handle("*OPC")
    assert src.handle("*ESR?") == "1"
    src.handle("*TRG")
    assert src.triggers == 1
    assert src.handle("SYST:VERS?") == "1999.0"


def test_rst_restores_defaults_and_calls_reset():
    hooks = RecordingHooks()
    src = ToySource(hooks=hooks)
    src.handle("FREQ 3e9;:OUTP2 ON;:SOUR2:MARK2:DEL 0.5")
    assert hooks.changed == ["src"] * 3
    src.handle("*RST")
    assert src.frequency == 1e9 and src.output == {1: False, 2: False}
    assert src.delay[(2, 2)] == 0.0
    assert src.resets == 1
    assert hooks.changed[-1] == "src"


def test_values_set_from_python_do_not_notify_the_lab():
    hooks = RecordingHooks()
    src = ToySource(hooks=hooks)
    src.temperature = 31.5
    src.output[2] = True
    assert src.handle("SYST:TEMP?;OUTP2?") == "31.5;1"
    assert hooks.changed == []
    with pytest.raises(AttributeError, match="per suffix"):
        src.output = True


# -- compound messages ------------------------------------------------------------------------
def test_compound_messages_and_relative_paths(src: ToySource):
    assert src.handle("SOUR:FREQ 2e9;POW -10;:OUTP ON;*OPC?") == "1"
    assert (src.frequency, src.power, src.output[1]) == (2e9, -10.0, True)
    assert src.handle("TRIG:COUN 5;SOUR BUS;COUN?;SOUR?") == "5;BUS"
    assert src.handle("FREQ?;POW?") == "2000000000;-10"
    assert src.handle(" ; ;") is None
    assert errors_of(src) == []


def test_an_error_aborts_only_its_own_unit(src: ToySource):
    assert src.handle("POW 99;FREQ 5e9;FREQ?") == "5000000000"
    assert codes_of(src) == [-222]


# -- extending --------------------------------------------------------------------------------
def test_subclasses_override_patterns_and_inherit_the_table():
    class Quiet(ToySource):
        IDN = "Acme,SRC-2Q,1,1"

        @command("[:SOURce]:POWer[:LEVel]?")
        def power_query(self, call: Call) -> str:
            return "quiet"

        def measure_power(self, call: Call) -> str:  # undecorated: keeps the pattern
            return "overridden"

    q = Quiet()
    assert q.handle("POW?") == "quiet"
    assert q.handle("MEAS:POW?") == "overridden"
    assert q.handle("POW -3;FREQ 2e9;FREQ?") == "2000000000"
    assert q.power == -3.0
    assert q.handle("*IDN?") == "Acme,SRC-2Q,1,1"
    assert ToySource().handle("POW?") == "-30"


def test_it_is_a_message_handler(src: ToySource):
    assert isinstance(src, MessageHandler)
    assert src.name == "src"
    assert format_error(-222) == '-222,"Data out of range"'
    assert format_error(5, 'x "y"') == "5,\"Device-specific error;x 'y'\""


def test_suffixes_without_a_marker_are_a_definition_error():
    with pytest.raises(ValueError, match="suffix marker"):

        class Broken(ScpiInstrument):  # noqa: F841
            x = Setting("OUTPut", Boolean(), False, suffixes=(1, 2))


def test_overflowing_numbers_queue_an_error_instead_of_raising() -> None:
    """'1e400' parses to infinity: a real instrument reports an error, it does not crash."""
    from sim_backend.instruments.scpi import Boolean, Integer, ScpiError

    for parser in (Integer(0, 10), Boolean()):
        with pytest.raises(ScpiError):
            parser.parse("1e400")
