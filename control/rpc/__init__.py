"""Request/reply between node controllers and the orchestrator, over ZeroMQ.

``RpcServer`` runs on each node controller and serves named methods; ``RpcClient`` is the
orchestrator's (or an operator script's) handle on one node. Messages are the validated,
versioned models of ``control.messages`` (msgpack by default, JSON accepted).

Server
------
``RpcServer(name, endpoint, methods)``: ``methods`` maps a method name to
``(ArgsModel, handler)``. The ``args`` map of a call is validated by ``ArgsModel`` (a pydantic
model) and the handler is called with the model instance; with ``ArgsModel=None`` the method
takes no arguments and the handler is called with none. A handler returns JSON-compatible
data or a pydantic model (dumped in JSON mode; numpy scalars and arrays are converted too).

* **One call at a time.** The server owns one ROUTER socket and handles requests one after
  the other on one thread: its background thread after ``start()``, or the caller's thread
  in ``serve_once()`` / ``serve_forever()``. Calls to one node's instruments are therefore
  serialised by construction: handlers need no locks against each other. A slow handler
  delays the replies to everything behind it, pings included - keep handlers short and run
  long experiments elsewhere (set ``server.busy`` meanwhile; pings report it).
* **Never crashes on input.** Undecodable, oversized, ill-typed or unknown messages get an
  ``error`` reply (``bad_message``; request id ``""`` if it could not be read). A handler that
  raises produces a ``failed`` reply naming the exception type and message (and is logged);
  the server keeps serving. Frames larger than 4x ``max_message_bytes`` are dropped by
  ZeroMQ itself (``MAXMSGSIZE``, tcp/ipc only), which disconnects that peer.
* **Serving loop.** With ``spin_us > 0`` the loop polls for the next request for up to
  that long after each reply before it blocks, and blocks at once while requests come
  further apart than that (``control.rpc.reply_wait``, the same policy as the client's):
  a server thread asleep in ``recv`` is another wake-up in every round trip. The default,
  0, blocks at once: a polling thread holds the GIL, which a client in the same process
  waits for (in-process RPC teleportations ran at half the rate). A node process
  (``qnode serve``), whose server thread has the process to itself, polls for 200 us.
* **Ownership lock.** Built-in methods ``lock(owner)`` and ``unlock(owner, force=False)``.
  While a node is locked, every ``call`` that does not carry the owner's token (``owner``
  field of the message) is refused with a ``locked`` error naming the owner; ``ping`` and
  ``hello`` keep working. An operator takes the lock so that, say, a night-time calibration
  script cannot disturb a running measurement. ``lock`` by the holder is a no-op, by anyone
  else refused; ``unlock`` needs the token, or ``force=True`` to break a stale lock (logged).
  While locked, the token is checked before the arguments.

Client
------
``RpcClient(endpoint, name, timeout_s=2.0)`` connects a DEALER socket and performs the
``hello`` handshake (a protocol version mismatch raises ``RpcError``). ``call(method, **args)``
returns the result or raises ``RpcError`` carrying the server's ``ErrorInfo``. Every request
has a finite timeout (``request(..., timeout_s=...)`` overrides it per call); on timeout
``RpcTimeout`` names endpoint, method and timeout, and the socket is recreated, so requests
still queued for an absent server are dropped rather than executed late, and the client stays
usable. Replies are matched by request id; stale ones are discarded.

A request waits for its reply by polling the socket for up to ``spin_us`` (200 us by
default) before it blocks, and stops spinning while its replies come later than that
(``control.rpc.reply_wait``): waking a thread that sleeps in ``recv`` is a large part of a
loopback round trip. ``spin_us=0`` always blocks at once.

A client is **not thread-safe**: use one client per thread (they are cheap).

Security
--------
``security=`` takes a ``control.security.Security``. With key files, the server's ROUTER socket
is a CURVE server (encrypted traffic) and only clients whose public key lies in
``allowed_clients_dir`` get through (ZAP, one ``ThreadAuthenticator`` per ``zmq.Context``,
started when the first secured server of that context binds and stopped when the last one
closes); the client sets its own key pair and the server's public key. A refused client - a key
not allowed, or the wrong server key - gets **no error reply** (ZeroMQ never answers an
unauthenticated peer): its ``hello`` raises ``RpcTimeout``, whose message mentions this.
``Security(plaintext=True)`` asks for an unencrypted connection explicitly (local dry runs);
``security=None`` is the same plaintext behaviour for code that does not know about security.
Both ends must agree: a CURVE client cannot talk to a plaintext server, nor the reverse.
"""

from __future__ import annotations

from .client import RpcClient
from .errors import RpcError, RpcTimeout
from .server import BUILTIN_METHODS, Handler, MethodSpec, RpcServer

__all__ = [
    "BUILTIN_METHODS",
    "Handler",
    "MethodSpec",
    "RpcClient",
    "RpcError",
    "RpcServer",
    "RpcTimeout",
]
