"""Simulated instruments on loopback TCP: raw SCPI sockets, like LAN instruments.

When node controllers run in separate processes they must share ONE simulated lab, so its
instruments are served over loopback TCP exactly like LAN instruments that speak raw SCPI
sockets: a driver opens ``TCPIP0::127.0.0.1::<port>::SOCKET`` (pyvisa-py does) and cannot
tell the simulation from the lab (DESIGN.md, principle 1)::

    lab_lock = threading.Lock()
    with InstrumentServer({"mw_a": SimRsSGS100A("mw_a")}, lock=lab_lock) as server:
        address = server.addresses()["mw_a"]   # "TCPIP0::127.0.0.1::<port>::SOCKET"
        mw = RohdeSchwarzSGS100A("mw_a", address=address, visalib="@py")

Each handler (a :class:`~sim_backend.instruments.protocols.MessageHandler`) gets its own
listening port (chosen by the OS, or ``base_port + i`` in the order of the mapping); every
accepted connection is served by its own background thread. Only loopback addresses
(127.0.0.0/8, ``::1``) are ever bound: anything else is refused with a ``ValueError``.

The wire, as the simulated instrument sees it (the in-process ``visa_library`` rules)
---------------------------------------------------------------------------------------
* **Messages end at the termination** (``handler.termination``, default ``"\\n"``). The
  byte stream is split at the termination's last byte; trailing CR/LF before it (so
  ``"\\r\\n"`` as well as ``"\\n"``) is stripped. For a ``"\\r"`` instrument a ``"\\n"``
  right after the ``"\\r"`` belongs to the terminator (``"\\r\\n"`` is accepted too).
* **A terminator is never taken from inside an IEEE 488.2 definite-length block**
  ``#<n><len><len bytes>``: the block is read whole, whatever bytes it holds, and the
  message ends at the first termination after it. A ``#`` inside a quoted string (``"..."``
  or ``'...'``) does not start a block; a ``#`` not followed by a digit 1-9 and that many
  digits is an ordinary character (``#H1F``, ``#0`` indefinite blocks end at the newline).
* **Bytes <-> str is latin-1**, so every byte value survives: the block bytes are
  ``message.encode("latin-1")``. A reply ``str`` is encoded as latin-1 (UTF-8 if it holds
  other characters); a handler may also return ``bytes``. The termination is appended.
* **Blank lines are ignored**: a message that is empty once its CR/LF are stripped (a
  stray terminator, e.g. ``"\\n\\r\\n"`` after a message) is not passed to the handler,
  as an instrument ignores white space between messages.
* Unlike the in-process library, a message is a terminated line of the stream, not a
  write: one write holding several terminated lines is several messages (as on a LAN
  instrument), and a write without terminator waits for the rest of its message.
* **One reply per message that has one**, in order; a message whose handler returns
  ``None`` sends nothing (the client's read times out, like on a real instrument).

Concurrency: every ``handle`` call, of every instrument of the server, runs under ONE lock
(the simulated lab is one physics engine and is not thread-safe); pass ``lock=`` to share it
with the lab's other users. Replies are sent outside the lock. Any number of clients may
connect to one instrument (one connection per driver); a client that disconnects closes only
its own connection; a reconnect is just a new connection. A handler that raises (a simulator
bug) is logged with its traceback and sends nothing; the connection stays up.

Fault injection (for tests of lost connections and timeouts)
------------------------------------------------------------
* :meth:`InstrumentServer.drop_connections` ``(name)``: reset every open connection of that
  instrument (closed with RST: the client's next I/O raises ``BrokenPipeError`` or
  ``ConnectionResetError``, at once, not after its timeout); new connections are
  accepted at once, and the instrument keeps its state (a re-plugged network cable).
* :meth:`InstrumentServer.set_unresponsive` ``(name, on)``: while on, the instrument
  swallows every message (not executed, no reply), so each query of the client times out.
* A :class:`~sim_backend.instruments.faults.FaultyInstrument` served in place of an
  instrument drives the rest (``faults.py``): its ``DroppedConnectionError`` resets every
  connection of the instrument, a ``Truncated`` reply is sent without its termination, and a
  ``Late`` reply is sent after sleeping its delay (outside the lab lock).

Per message, the overhead is one ``recv``, a ``find`` of the terminator (and of ``#``) and one
``sendall``; accepted sockets have ``TCP_NODELAY``, and on Linux ``TCP_QUICKACK`` is re-armed
before each ``recv`` (pyvisa-py does not set ``TCP_NODELAY``: without quick ACKs every write
that has no reply would hold the client's next message back by the 40 ms delayed ACK).
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import selectors
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from .faults import DroppedConnectionError, Late, Truncated
from .message_framing import MessageFramer
from .protocols import MessageHandler

log = logging.getLogger(__name__)

#: Bytes asked of ``recv`` at a time (a small query is one recv; large blocks stream in).
RECV_SIZE = 1 << 16
_LINGER_RESET = struct.pack("ii", 1, 0)  # struct linger {on, 0 s}: close() sends RST
_connection_numbers = itertools.count(1)
_IPV6_LOOPBACK = ipaddress.IPv6Address("::1")
#: Linux: ACK at once instead of delaying the ACK by up to 40 ms (re-armed before each recv).
#: A client without TCP_NODELAY (pyvisa-py's default) holds a small write back until the
#: previous one is ACKed (Nagle), so a write followed by a query would otherwise wait for the
#: delayed ACK of the write, which has no reply to ride on.
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def check_loopback(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The loopback IP address ``host`` (127.0.0.0/8 or ``::1``); ``ValueError`` otherwise."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"simulated instruments are only served on a loopback IP address "
            f"(127.0.0.0/8 or ::1); {host!r} is not an IP address (use '127.0.0.1')"
        ) from None
    if address != _IPV6_LOOPBACK and not (address.version == 4 and address.is_loopback):
        raise ValueError(
            f"refusing to serve simulated instruments on {host!r}: only loopback addresses "
            "(127.0.0.0/8 or ::1) are allowed, never a network interface"
        )
    return address


@dataclass(eq=False)
class _Served:
    """One instrument of the server: its handler, listening socket and connections."""

    name: str
    handler: MessageHandler
    termination: bytes
    port: int = 0
    listener: socket.socket | None = None
    connections: dict[socket.socket, threading.Thread] = field(default_factory=dict)
    unresponsive: bool = False


class InstrumentServer:
    """Serve simulated instruments on loopback TCP ports (see the module docstring).

    Args:
        handlers: instrument name -> simulated instrument (``MessageHandler``).
        host: loopback IP address to bind (127.0.0.0/8 or ``::1``; anything else is a
            ``ValueError``). VISA resource names cannot hold an IPv6 address and pyvisa-py
            connects over IPv4 only, so VISA clients need an IPv4 host.
        lock: the lock held around every ``handle`` call of every instrument (default: a new
            ``threading.Lock``); share it with the lab's other users.
        base_port: 0 lets the OS choose each port; otherwise instrument ``i`` (in the order
            of ``handlers``) listens on ``base_port + i``.
        terminations: per-instrument termination overriding ``handler.termination``.
    """

    def __init__(
        self,
        handlers: Mapping[str, MessageHandler],
        host: str = "127.0.0.1",
        lock: Any = None,
        *,
        base_port: int = 0,
        terminations: Mapping[str, str] | None = None,
    ) -> None:
        self._address = check_loopback(host)
        self.host = str(self._address)
        if not 0 <= base_port <= 65535 - max(len(handlers) - 1, 0):
            raise ValueError(f"base_port {base_port} leaves no room for {len(handlers)} ports")
        self.base_port = base_port
        self.lock = lock if lock is not None else threading.Lock()
        terminations = dict(terminations or {})
        unknown = set(terminations) - set(handlers)
        if unknown:
            raise KeyError(f"terminations for unknown instruments: {sorted(unknown)}")
        self._served: dict[str, _Served] = {}
        for name, handler in handlers.items():
            term = terminations.get(name, getattr(handler, "termination", "\n"))
            if not term:
                raise ValueError(f"instrument {name!r}: empty termination")
            self._served[name] = _Served(name, handler, term.encode("latin-1"))
        self._state_lock = threading.Lock()
        self._selector: selectors.BaseSelector | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._acceptor: threading.Thread | None = None
        self._running = False

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> InstrumentServer:
        """Bind every instrument's port and start accepting connections (idempotent)."""
        if self._running:
            return self
        family = socket.AF_INET if self._address.version == 4 else socket.AF_INET6
        selector = selectors.DefaultSelector()
        try:
            for i, served in enumerate(self._served.values()):
                listener = socket.socket(family, socket.SOCK_STREAM)
                served.listener = listener
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                port = self.base_port + i if self.base_port else 0
                try:
                    listener.bind((self.host, port))
                except OSError as exc:
                    raise OSError(
                        exc.errno, f"cannot serve {served.name!r} on {self.host}:{port}: {exc}"
                    ) from exc
                listener.listen(16)
                listener.setblocking(False)
                served.port = listener.getsockname()[1]
                selector.register(listener, selectors.EVENT_READ, served)
            wake = socket.socketpair()
            selector.register(wake[0], selectors.EVENT_READ, None)
        except BaseException:
            for served in self._served.values():
                if served.listener is not None:
                    served.listener.close()
                    served.listener = None
            selector.close()
            raise
        self._selector, self._wake = selector, wake
        self._running = True
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="qnode-sim-tcp-accept", daemon=True
        )
        self._acceptor.start()
        log.debug("serving %s on %s", ", ".join(self._served), self.host)
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection and listening socket (idempotent)."""
        if not self._running:
            return
        self._running = False
        assert self._wake is not None and self._selector is not None
        self._wake[1].send(b"x")
        if self._acceptor is not None:
            self._acceptor.join()
            self._acceptor = None
        for served in self._served.values():
            if served.listener is not None:
                served.listener.close()
                served.listener = None
            self._close_connections(served, reset=False)
        self._selector.close()
        for sock in self._wake:
            sock.close()
        self._selector = self._wake = None

    def __enter__(self) -> InstrumentServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what clients need ---------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._served)

    def handler(self, name: str) -> MessageHandler:
        return self._get(name).handler

    def ports(self) -> dict[str, int]:
        """Instrument name -> TCP port (the server must be started)."""
        self._require_running()
        return {name: served.port for name, served in self._served.items()}

    def address(self, name: str) -> str:
        """VISA resource name of one instrument: ``TCPIP0::127.0.0.1::<port>::SOCKET``."""
        self._require_running()
        host = self.host if self._address.version == 4 else f"[{self.host}]"
        return f"TCPIP0::{host}::{self._get(name).port}::SOCKET"

    def addresses(self) -> dict[str, str]:
        """Instrument name -> VISA resource name ``TCPIP0::127.0.0.1::<port>::SOCKET``."""
        return {name: self.address(name) for name in self._served}

    def connection_count(self, name: str) -> int:
        """Number of open client connections of one instrument."""
        served = self._get(name)
        with self._state_lock:
            return len(served.connections)

    # -- fault injection ------------------------------------------------------------------------
    def drop_connections(self, name: str) -> int:
        """Reset every open connection of ``name`` (returns how many); reconnecting works."""
        served = self._get(name)
        count = self._close_connections(served, reset=True)
        log.info("dropped %d connection(s) of %s", count, name)
        return count

    def set_unresponsive(self, name: str, on: bool = True) -> None:
        """While ``on``, ``name`` swallows every message: not executed, never answered."""
        self._get(name).unresponsive = bool(on)

    # -- internals ------------------------------------------------------------------------------
    def _get(self, name: str) -> _Served:
        try:
            return self._served[name]
        except KeyError:
            raise KeyError(
                f"no simulated instrument {name!r} on this server; served: "
                f"{', '.join(self._served) or 'none'}"
            ) from None

    def _require_running(self) -> None:
        if not self._running:
            raise RuntimeError("the instrument server is not started: call start() first")

    def _close_connections(self, served: _Served, reset: bool) -> int:
        """Wake every connection thread of ``served`` (it closes its socket) and join it."""
        with self._state_lock:
            connections = list(served.connections.items())
        for conn, _ in connections:
            try:
                if reset:
                    # the connection thread's close() then sends RST, not just FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                conn.shutdown(socket.SHUT_RDWR)  # wakes the thread's recv (or sendall)
            except OSError:
                pass  # already closed by the peer
        for _, thread in connections:
            if thread is not threading.current_thread():
                thread.join()
        return len(connections)

    def _accept_loop(self) -> None:
        selector = self._selector
        assert selector is not None
        while self._running:
            for key, _ in selector.select():
                served = key.data
                if served is None:  # woken by stop()
                    return
                try:
                    conn, peer = key.fileobj.accept()  # type: ignore[union-attr]
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    if not self._running:
                        return
                    log.exception("accept failed on %s", served.name)
                    continue
                self._start_connection(served, conn, peer)

    def _start_connection(self, served: _Served, conn: socket.socket, peer: Any) -> None:
        conn.setblocking(True)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(
            target=self._serve_connection,
            args=(served, conn),
            name=f"qnode-sim-tcp-{served.name}-{next(_connection_numbers)}",
            daemon=True,
        )
        with self._state_lock:
            served.connections[conn] = thread
        log.debug("%s: connection from %s", served.name, peer)
        thread.start()

    def _serve_connection(self, served: _Served, conn: socket.socket) -> None:
        framer = MessageFramer(served.termination)
        handler, lock, term = served.handler, self.lock, served.termination
        recv, sendall, setsockopt = conn.recv, conn.sendall, conn.setsockopt
        try:
            while True:
                if _QUICKACK is not None:
                    setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                data = recv(RECV_SIZE)
                if not data:
                    break
                replies = []
                for raw in framer.feed(data):
                    if served.unresponsive:
                        continue
                    message = raw.decode("latin-1")
                    try:
                        with lock:
                            reply = handler.handle(message)
                    except DroppedConnectionError as dropped:
                        log.info("%s", dropped)
                        self._close_connections(served, reset=True)
                        return
                    except Exception:
                        log.exception(
                            "simulated instrument %s raised on %r (no reply sent)",
                            served.name,
                            message[:200],
                        )
                        continue
                    if reply is None:
                        continue
                    if isinstance(reply, Truncated):
                        replies.append(reply.data)
                        continue
                    if isinstance(reply, Late):
                        if replies:
                            sendall(b"".join(replies))
                            replies = []
                        time.sleep(reply.delay_s)
                        reply = reply.reply
                    if isinstance(reply, str):
                        try:
                            reply = reply.encode("latin-1")
                        except UnicodeEncodeError:
                            reply = reply.encode("utf-8")
                    replies.append(reply)
                    replies.append(term)
                if replies:
                    sendall(b"".join(replies))
        except OSError as exc:
            log.debug("%s: connection closed (%s)", served.name, exc)
        finally:
            with self._state_lock:
                served.connections.pop(conn, None)
            conn.close()


__all__ = ["InstrumentServer", "MessageFramer", "check_loopback"]
