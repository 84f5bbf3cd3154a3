"""Simulated instruments served on loopback TCP, driven by the real drivers over pyvisa-py."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import pyvisa
from qcodes.instrument import Instrument

from drivers.errors import (
    InstrumentCommunicationError,
    InstrumentErrorQueueError,
    InstrumentIdentityError,
    InstrumentTimeoutError,
)
from drivers.hal import AwgWaveform
from drivers.resilience import RetryPolicy
from drivers.rs_sgs100a import RohdeSchwarzSGS100A
from drivers.tektronix_awg5014c import TektronixAWG5014C, decode_waveform, encode_waveform
from sim_backend.instruments.message_framing import MessageFramer
from sim_backend.instruments.protocols import MessageHandler
from sim_backend.instruments.sim_rs_sgs100a import SimRsSGS100A
from sim_backend.instruments.sim_tektronix_awg5014c import SimTektronixAWG5014C
from sim_backend.instruments.tcp_server import RECV_SIZE, InstrumentServer, check_loopback
from sim_backend.instruments.visa_library import SimulatedVisaLibrary

SHORT_TIMEOUT_S = 0.2


class Recorder:
    """A bare MessageHandler: records what arrives, answers ``<message>`` to queries."""

    def __init__(self, name: str = "recorder", termination: str = "\n") -> None:
        self.name = name
        self.termination = termination
        self.messages: list[str] = []

    def handle(self, message: str) -> str | None:
        if message == "BOOM":
            raise RuntimeError("simulator bug")
        self.messages.append(message)
        return f"<{message}>" if message.endswith("?") else None


class Exclusive:
    """Wraps a handler; records whether any two ``handle`` calls ever overlapped, and
    whether each ran under ``lock``."""

    def __init__(self, inner: MessageHandler, lock: threading.Lock, state: dict[str, int]):
        self.inner, self.lock, self.state = inner, lock, state
        self.name = inner.name
        self.termination = getattr(inner, "termination", "\n")

    def handle(self, message: str) -> str | None:
        state = self.state
        state["calls"] += 1
        state["unlocked"] += not self.lock.locked()
        state["inside"] += 1
        state["max_inside"] = max(state["max_inside"], state["inside"])
        time.sleep(0)  # let another thread run if it can
        try:
            return self.inner.handle(message)
        finally:
            state["inside"] -= 1


@pytest.fixture(autouse=True)
def _close_all_instruments() -> Iterator[None]:
    yield
    Instrument.close_all()


@pytest.fixture
def serve() -> Iterator[Callable[..., InstrumentServer]]:
    """``serve({"name": handler}, **kwargs)`` -> a started server, stopped in teardown."""
    servers: list[InstrumentServer] = []

    def factory(handlers: dict[str, MessageHandler], **kwargs: object) -> InstrumentServer:
        server = InstrumentServer(handlers, **kwargs).start()
        servers.append(server)
        return server

    yield factory
    Instrument.close_all()
    for server in servers:
        server.stop()


@pytest.fixture
def raw_client() -> Iterator[Callable[[int], socket.socket]]:
    """``raw_client(port)`` -> a connected loopback socket (closed in teardown)."""
    sockets: list[socket.socket] = []

    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        sockets.append(sock)
        return sock

    yield connect
    for sock in sockets:
        sock.close()


def read_line(sock: socket.socket, term: bytes = b"\n") -> bytes:
    data = b""
    while not data.endswith(term):
        chunk = sock.recv(4096)
        assert chunk, "connection closed"
        data += chunk
    return data


def read_replies(sock: socket.socket, count: int, term: bytes = b"\n") -> bytes:
    data = b""
    while data.count(term) < count:
        data += read_line(sock, term)
    return data


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (state that another thread changes); fail after 5 s."""
    deadline = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.001)


def sgs(name: str, address: str, **kwargs: object) -> RohdeSchwarzSGS100A:
    return RohdeSchwarzSGS100A(name, address=address, visalib="@py", **kwargs)


# -- a real driver against its simulated instrument, over loopback TCP ------------------------
def test_sgs100a_round_trips_over_tcp(serve):
    sim = SimRsSGS100A("mw_a")
    server = serve({"mw_a": sim})
    address = server.addresses()["mw_a"]
    assert address == f"TCPIP0::127.0.0.1::{server.ports()['mw_a']}::SOCKET"

    mw = sgs("mw_a", address)
    assert mw.get_idn()["vendor"] == "Rohde&Schwarz"
    assert mw.get_idn()["model"] == "SGS100A"
    mw.frequency(2.87e9)
    mw.power(-7.5)
    mw.output(True)
    mw.pulse_source("INT")
    assert mw.frequency() == 2.87e9
    assert mw.power() == -7.5
    assert mw.output() is True
    assert mw.pulse_source() == "INT"
    assert (sim.frequency_hz, sim.power_dbm, sim.output_on) == (2.87e9, -7.5, True)
    mw.safe_state()
    assert sim.output_on is False
    assert server.connection_count("mw_a") == 1


def test_error_queue_entry_is_raised_by_the_driver(serve):
    """The driver allows 20 GHz, the simulated unit (option B112) only 12.75 GHz: -222."""
    server = serve({"mw_a": SimRsSGS100A("mw_a")})
    mw = sgs("mw_a", server.address("mw_a"), frequency_range_hz=(1e6, 20e9))
    with pytest.raises(InstrumentErrorQueueError, match=r"mw_a \(R&S SGS100A\).*-222"):
        mw.frequency(15e9)
    assert mw.read_error_queue() == []  # drained by the driver
    assert mw.frequency() == 1e9  # unchanged


def test_wrong_instrument_behind_the_port_fails_the_identity_check(serve):
    server = serve({"awg": SimTektronixAWG5014C("awg")})
    with pytest.raises(InstrumentIdentityError, match="TEKTRONIX"):
        sgs("mw_a", server.address("awg"))


def test_awg_waveform_with_newline_bytes_arrives_intact(serve):
    sim = SimTektronixAWG5014C("awg_a")
    server = serve({"awg_a": sim})
    awg = TektronixAWG5014C("awg_a", address=server.address("awg_a"), visalib="@py")

    # codes whose bytes are LF, CR, '#' and '"' (0x0A, 0x0D, 0x23, 0x22), and a block
    # larger than one recv, so it streams in over many reads
    n = 3 * RECV_SIZE // 2
    special = np.array([0x000A, 0x0A0A, 0x0D0A, 0x0A0D, 0x230A, 0x2223, 0x3F0A], dtype=np.uint16)
    codes = np.resize(special, n) & 0x3FFF
    samples = (codes.astype(float) - 8191) / 8191
    rng = np.random.default_rng(7)
    marker1, marker2 = rng.random(n) < 0.5, rng.random(n) < 0.3
    waveform = AwgWaveform("herald_gate", samples, marker1, marker2)
    payload = encode_waveform(waveform)
    assert b"\n" in payload and b"\r\n" in payload and b"#" in payload

    awg.upload_waveform(waveform)  # the driver also checks the error queue: empty
    stored = sim.waveforms["herald_gate"]
    expected_samples, expected_m1, expected_m2 = decode_waveform(payload)
    np.testing.assert_array_equal(stored.samples, expected_samples)
    np.testing.assert_array_equal(stored.marker1, marker1)
    np.testing.assert_array_equal(stored.marker2, marker2)
    np.testing.assert_array_equal(stored.marker1, expected_m1)
    np.testing.assert_array_equal(stored.marker2, expected_m2)
    # the stream is still in step after the block
    awg.ch1.amplitude(1.25)
    assert awg.ch1.amplitude() == 1.25
    assert awg.get_idn()["model"] == "AWG5014C"


def test_two_drivers_in_two_threads_share_one_lock(serve):
    lab_lock = threading.Lock()
    state = {"calls": 0, "unlocked": 0, "inside": 0, "max_inside": 0}
    sim_mw, sim_awg = SimRsSGS100A("mw_a"), SimTektronixAWG5014C("awg_a")
    handlers = {
        "mw_a": Exclusive(sim_mw, lab_lock, state),
        "awg_a": Exclusive(sim_awg, lab_lock, state),
    }
    server = serve(handlers, lock=lab_lock)
    assert server.lock is lab_lock
    mw = sgs("mw_a", server.address("mw_a"))
    awg = TektronixAWG5014C("awg_a", address=server.address("awg_a"), visalib="@py")
    rounds = 150

    def drive_mw() -> None:
        for i in range(rounds):
            frequency = 1e9 + 1e3 * i
            mw.frequency(frequency)
            assert mw.frequency() == frequency

    def drive_awg() -> None:
        for i in range(rounds):
            amplitude = round(0.5 + 0.01 * (i % 100), 4)
            awg.ch2.amplitude(amplitude)
            assert awg.ch2.amplitude() == amplitude

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(drive_mw), pool.submit(drive_awg)]
        for future in futures:
            future.result()  # re-raises any error of the thread
    assert state["calls"] >= 4 * rounds
    assert state["unlocked"] == 0
    assert state["max_inside"] == 1
    assert sim_mw.frequency_hz == 1e9 + 1e3 * (rounds - 1)
    assert sim_awg.channels[2].amplitude_vpp == round(0.5 + 0.01 * ((rounds - 1) % 100), 4)


def test_clients_come_and_go_independently(serve):
    sim = SimRsSGS100A("mw_a")
    server = serve({"mw_a": sim})
    address = server.address("mw_a")
    first, second = sgs("mw_1", address), sgs("mw_2", address)
    wait_until(lambda: server.connection_count("mw_a") == 2, "two connections")
    first.power(3.0)
    first.close()
    wait_until(lambda: server.connection_count("mw_a") == 1, "the first client to leave")
    assert second.power() == 3.0
    third = sgs("mw_3", address)
    assert third.power() == 3.0
    assert server.connection_count("mw_a") == 2


# -- faults ---------------------------------------------------------------------------------
def test_drop_connections_breaks_the_session_and_reconnecting_works(serve):
    sim = SimRsSGS100A("mw_a")
    server = serve({"mw_a": sim})
    mw = sgs("mw_a", server.address("mw_a"))
    mw.power(5.0)
    other = serve({"spare": SimRsSGS100A("spare")})
    spare = sgs("spare", other.address("spare"))

    assert server.drop_connections("mw_a") == 1
    assert server.connection_count("mw_a") == 0
    assert mw.power() == 5.0  # the driver reconnected at once (no wait for the timeout)
    assert mw.resilience.stats.reconnects == 1
    assert spare.power() == -20.0  # the other instrument did not notice
    mw.close()

    again = sgs("mw_a", server.address("mw_a"))
    assert again.power() == 5.0  # the instrument kept its state
    assert server.drop_connections("mw_a") == 1
    assert server.drop_connections("mw_a") == 0


def test_drop_connections_is_a_driver_communication_error_naming_the_instrument(serve):
    server = serve({"mw_a": SimRsSGS100A("mw_a")})
    mw = sgs("mw_a", server.address("mw_a"))
    mw.resilience.policy = RetryPolicy(retries=0)
    server.drop_connections("mw_a")
    with pytest.raises(InstrumentCommunicationError, match=r"mw_a \(R&S SGS100A\)"):
        mw.ask("SOUR:POW?")


def test_unresponsive_instrument_makes_the_driver_time_out(serve):
    sim = SimRsSGS100A("mw_a")
    server = serve({"mw_a": sim})
    mw = sgs("mw_a", server.address("mw_a"), timeout=SHORT_TIMEOUT_S)
    server.set_unresponsive("mw_a", True)
    with pytest.raises(InstrumentTimeoutError, match=r"mw_a \(R&S SGS100A\).*SOUR:POW\?"):
        mw.power()
    server.set_unresponsive("mw_a", False)
    assert mw.power() == -20.0  # nothing stale is left on the wire
    assert server.connection_count("mw_a") == 1


def test_handler_exception_is_logged_and_the_connection_stays_up(serve, raw_client, caplog):
    recorder = Recorder()
    server = serve({"rec": recorder})
    sock = raw_client(server.ports()["rec"])
    with caplog.at_level(logging.ERROR, logger="sim_backend.instruments.tcp_server"):
        sock.sendall(b"BOOM\nPING?\n")
        assert read_line(sock) == b"<PING?>\n"
    assert "rec raised on 'BOOM'" in caplog.text
    assert "simulator bug" in caplog.text


# -- loopback only -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host", ["0.0.0.0", "192.168.1.20", "10.0.0.1", "::", "fe80::1", "localhost", "lab-pc", ""]
)
def test_non_loopback_host_is_refused(host):
    with pytest.raises(ValueError, match="loopback"):
        InstrumentServer({"rec": Recorder()}, host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1"])
def test_loopback_hosts_are_accepted(host):
    assert str(check_loopback(host)) == host


def test_other_loopback_address_and_base_port(serve, raw_client):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = serve({"rec": Recorder()}, base_port=port)
    assert server.address("rec") == f"TCPIP0::127.0.0.1::{port}::SOCKET"
    sock = raw_client(port)
    sock.sendall(b"A?\r\n")
    assert read_line(sock) == b"<A?>\n"
    with pytest.raises(KeyError, match="no simulated instrument 'nope'"):
        server.address("nope")


def test_addresses_need_a_started_server():
    server = InstrumentServer({"rec": Recorder()})
    with pytest.raises(RuntimeError, match="start"):
        server.addresses()
    with server:
        assert list(server.addresses()) == ["rec"]
    assert not server.running


# -- framing ------------------------------------------------------------------------------------
def test_terminations_and_pipelined_messages_over_the_wire(serve, raw_client):
    lf, cr = Recorder("lf"), Recorder("cr", termination="\r")
    server = serve({"lf": lf, "cr": cr})
    sock = raw_client(server.ports()["lf"])
    sock.sendall(b"SET 1\nA?\r\nB?\n")
    assert read_replies(sock, 2) == b"<A?>\n<B?>\n"
    assert lf.messages == ["SET 1", "A?", "B?"]

    sock = raw_client(server.ports()["cr"])
    sock.sendall(b"X?\r\nY?\r")
    assert read_replies(sock, 2, b"\r") == b"<X?>\r<Y?>\r"
    assert cr.messages == ["X?", "Y?"]


def test_block_sent_byte_by_byte_arrives_whole(serve, raw_client):
    recorder = Recorder()
    server = serve({"rec": recorder})
    sock = raw_client(server.ports()["rec"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = bytes(range(256))
    message = b"DATA #3256" + payload + b"\nQ?\n"
    for i in range(len(message)):
        sock.sendall(message[i : i + 1])
    assert read_line(sock) == b"<Q?>\n"
    assert recorder.messages == ["DATA #3256" + payload.decode("latin-1"), "Q?"]


def feed_in_pieces(termination: bytes, stream: bytes, step: int) -> list[bytes]:
    framer = MessageFramer(termination)
    messages: list[bytes] = []
    for i in range(0, len(stream), step):
        messages += framer.feed(stream[i : i + step])
    return messages


@pytest.mark.parametrize(
    ("termination", "stream", "expected"),
    [
        (b"\n", b"A\nB\r\nC\n", [b"A", b"B", b"C"]),
        (b"\n", b"\n\r\nA\n\n", [b"A"]),  # blank lines are ignored
        (b"\r\n", b"A\r\nB\n", [b"A", b"B"]),
        (b"\r", b"A\rB\r\nC\r", [b"A", b"B", b"C"]),
        (b"\n", b'W "a#15"\nX\n', [b'W "a#15"', b"X"]),  # '#' in a string: no block
        (b"\n", b"W 'it''s #2'\nX\n", [b"W 'it''s #2'", b"X"]),
        (
            b"\n",
            b"H #H1F\nI #0ab\nJ #\nK #3\nL #2x\n",
            [b"H #H1F", b"I #0ab", b"J #", b"K #3", b"L #2x"],
        ),
        (b"\n", b"D #14a\nb\n\n", [b"D #14a\nb\n"]),  # block bytes, then its terminator
        (b"\n", b"D #14ab\r\n\r\n", [b"D #14ab\r\n"]),  # CR/LF inside the block are kept
        (b"\n", b'D "w",#210' + b"\n" * 11 + b"Q?\n", [b'D "w",#210' + b"\n" * 10, b"Q?"]),
        (b"\n", b"D #11\n#11\r\n", [b"D #11\n#11\r"]),  # two blocks in one message
        (b"\r", b"D #12\r\r\r\nE\r", [b"D #12\r\r", b"E"]),
    ],
)
@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_framer_splits_the_stream(termination, stream, expected, step):
    assert feed_in_pieces(termination, stream, step) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"SOUR:FREQ 1e9\n",
        b"SOUR:FREQ 1e9\r\n",
        b"A\n\r\n",
        b'WLIS:WAV:DATA "w",#16\n\r\n\r#"\n',
        b"DATA #14\r\n\r\n\r\n",
        b"X #0abc\n",
        b"Y #9\n",
    ],
)
def test_framer_gives_the_same_message_as_the_in_process_library(data):
    recorder = Recorder()
    library = SimulatedVisaLibrary()
    library.attach("TCPIP0::rec::5025::SOCKET", recorder)
    rm = pyvisa.ResourceManager(library)
    try:
        rm.open_resource("TCPIP0::rec::5025::SOCKET").write_raw(data)
    finally:
        rm.close()
    assert [m.decode("latin-1") for m in MessageFramer(b"\n").feed(data)] == recorder.messages


def test_server_restarts_and_stop_is_idempotent(raw_client):
    recorder = Recorder()
    server = InstrumentServer({"rec": recorder})
    try:
        for _ in range(2):
            server.start()
            sock = raw_client(server.ports()["rec"])
            sock.sendall(b"A?\n")
            assert read_line(sock) == b"<A?>\n"
            server.stop()
            assert sock.recv(16) == b""  # the server closed the connection
        server.stop()
        assert not [t for t in threading.enumerate() if t.name.startswith("qnode-sim-tcp")]
    finally:
        server.stop()
