"""Heartbeats between the orchestrator and its node controllers.

A ``HeartbeatMonitor`` pings every node on a background thread; a node whose last successful
ping is older than ``lost_after_s`` (default 2 s) is declared **lost**, exactly once, and
``on_lost(node, reason)`` is called. The other nodes must then go to their safe state.

Threads
-------
``RpcClient`` (and so ``RemoteNode``) is not thread-safe. The monitor therefore opens its
**own** client per node, used only on its own thread; it never touches the orchestrator's
clients. Node servers handle one request at a time, so a ping waits behind a running call:
keep node handlers short (see ``control.rpc``), or a busy node will look silent.

``on_lost`` runs on the monitor thread. It must not use the orchestrator's nodes; it should
only record the loss (the monitor itself also does: ``lost``, ``raise_if_lost()``). The
orchestrator's run loop calls ``raise_if_lost()`` between shots; on ``NodeLost`` it calls
``make_others_safe(orchestrator.nodes, exc.node)`` from its own thread::

    with HeartbeatMonitor(endpoints, security_for=..., on_lost=log_loss) as monitor:
        try:
            for shot in shots:
                monitor.raise_if_lost()
                run(shot)
        except NodeLost as exc:
            failures = make_others_safe(orchestrator.nodes, exc.node)

A run loop blocked inside a call to the dead node only notices after that call's own
timeout. With ``safe_on_loss=True`` the monitor does not wait for it: as soon as it declares
a node lost it calls ``safe_state`` on every other monitored node through its own clients
(failures in ``safe_failures``), so the other nodes are safe within the detection time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .orchestrator import OrchestrationError
from .rpc import RpcClient
from .security import Security

log = logging.getLogger(__name__)

#: The requirement: a silent node is declared lost within this time by default.
DEFAULT_LOST_AFTER_S = 2.0
DEFAULT_INTERVAL_S = 0.25


class NodeLost(OrchestrationError):  # noqa: N818 - the name the API promises
    """A node stopped answering heartbeats. ``node`` and ``reason`` say which and why.

    A subclass of ``OrchestrationError``, so run loops that already end a run cleanly on
    orchestration errors end it on a lost node too."""

    def __init__(self, node: str, reason: str) -> None:
        self.node = node
        self.reason = reason
        super().__init__(f"node {node!r} lost: {reason}")


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}={value!r}: expected a number of seconds")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r}: expected a positive, finite number of seconds")
    return value


class HeartbeatMonitor:
    """Pings each node of ``endpoints`` (name -> RPC endpoint) every ``interval_s`` on a
    background thread and declares a node lost when its last successful ping is older than
    ``lost_after_s``.

    * ``security_for(node)`` gives the ``Security`` to connect to ``node`` with (e.g.
      ``lambda n: control.keys.orchestrator_security(loaded, n, plaintext)``); None: plaintext.
    * ``ping_timeout_s`` (default ``interval_s``) bounds each ping; pings go one node after
      the other, so a silent node delays the next pings by at most this much.
    * A node is lost at most ``lost_after_s + ping_timeout_s`` (plus scheduling) after its
      last successful ping; before its first one, the clock starts at ``start()``.
    * A node that answers a ping under another name counts as silent (wrong endpoint).
    * Lost nodes are no longer pinged; a monitor does not declare a node found again.
    """

    def __init__(
        self,
        endpoints: Mapping[str, str],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        lost_after_s: float = DEFAULT_LOST_AFTER_S,
        ping_timeout_s: float | None = None,
        security_for: Callable[[str], Security | None] | None = None,
        on_lost: Callable[[str, str], None],
        safe_on_loss: bool = False,
        name: str = "heartbeat",
    ) -> None:
        if not isinstance(endpoints, Mapping) or not endpoints:
            raise ValueError(f"endpoints={endpoints!r}: expected a non-empty {{node: endpoint}}")
        for node, endpoint in endpoints.items():
            if not isinstance(node, str) or not node:
                raise ValueError(f"endpoints: node name {node!r}: expected a non-empty string")
            if not isinstance(endpoint, str) or "://" not in endpoint:
                raise ValueError(
                    f"endpoints[{node!r}]={endpoint!r}: expected an endpoint such as "
                    "'tcp://127.0.0.1:5555'"
                )
        interval_s = _positive("interval_s", interval_s)
        lost_after_s = _positive("lost_after_s", lost_after_s)
        if not lost_after_s > interval_s:
            raise ValueError(
                f"lost_after_s={lost_after_s!r} must be greater than interval_s={interval_s!r} "
                "(a node needs more than one ping interval to be declared lost)"
            )
        if ping_timeout_s is None:
            ping_timeout_s = interval_s
        ping_timeout_s = _positive("ping_timeout_s", ping_timeout_s)
        if ping_timeout_s > lost_after_s:
            raise ValueError(
                f"ping_timeout_s={ping_timeout_s!r} must not exceed lost_after_s={lost_after_s!r}"
            )
        if not callable(on_lost):
            raise TypeError(f"on_lost={on_lost!r}: expected a callable(node, reason)")
        if security_for is not None and not callable(security_for):
            raise TypeError(f"security_for={security_for!r}: expected a callable(node)")
        self.endpoints: dict[str, str] = dict(endpoints)
        self.interval_s = interval_s
        self.lost_after_s = lost_after_s
        self.ping_timeout_s = ping_timeout_s
        self.security_for = security_for
        self.on_lost = on_lost
        self.safe_on_loss = safe_on_loss
        self.name = name
        #: node -> reason, in the order the nodes were declared lost.
        self.lost: dict[str, str] = {}
        #: with ``safe_on_loss``: failures of the safe-state calls the monitor made.
        self.safe_failures: dict[str, str] = {}
        self.lost_event = threading.Event()
        self._lock = threading.Lock()
        self._last_ok: dict[str, float | None] = dict.fromkeys(self.endpoints)
        self._last_error: dict[str, str] = {}
        self._declared_at: dict[str, float] = {}
        self._started_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clients: dict[str, RpcClient] = {}  # owned by the monitor thread only

    # ----------------------------------------------------------------- public
    def start(self) -> HeartbeatMonitor:
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started")
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop pinging and close the monitor's clients (waits for the thread)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> HeartbeatMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def last_seen(self, node: str) -> float | None:
        """``time.monotonic()`` of ``node``'s last successful ping, or None if none yet."""
        if node not in self._last_ok:
            raise KeyError(f"node {node!r} is not monitored; monitored: {sorted(self.endpoints)}")
        with self._lock:
            return self._last_ok[node]

    def declared_at(self, node: str) -> float | None:
        """``time.monotonic()`` at which ``node`` was declared lost, or None."""
        with self._lock:
            return self._declared_at.get(node)

    def raise_if_lost(self) -> None:
        """Raise ``NodeLost`` for the first node declared lost, if any (for run loops)."""
        if not self.lost_event.is_set():
            return
        with self._lock:
            node, reason = next(iter(self.lost.items()))
        raise NodeLost(node, reason)

    # ----------------------------------------------------------------- thread
    def _run(self) -> None:
        try:
            next_round = time.monotonic()
            while not self._stop.is_set():
                for node in list(self.endpoints):
                    if self._stop.is_set():
                        break
                    if node in self.lost:
                        continue
                    self._ping(node)
                    self._check()  # after every ping: a slow node does not delay the others
                next_round += self.interval_s
                now = time.monotonic()
                if next_round < now:  # a round overran (silent nodes): do not burst
                    next_round = now
                self._stop.wait(next_round - now)
        except Exception:  # pragma: no cover - defensive: the monitor must say it died
            log.exception("%s: monitor thread failed", self.name)
            raise
        finally:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def _client(self, node: str) -> RpcClient:
        client = self._clients.get(node)
        if client is None:
            security = self.security_for(node) if self.security_for is not None else None
            client = RpcClient(
                self.endpoints[node],
                name=f"{self.name}->{node}",
                timeout_s=self.ping_timeout_s,
                security=security,
            )  # the hello handshake: raises if the node does not answer
            self._clients[node] = client
        return client

    def _ping(self, node: str) -> None:
        try:
            result = self._client(node).ping(timeout_s=self.ping_timeout_s)
            if result.node != node:
                raise ValueError(
                    f"{self.endpoints[node]} answers as node {result.node!r}, not {node!r}"
                )
        except Exception as exc:  # timeouts, refused keys, wrong node: all count as silence
            self._last_error[node] = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._last_ok[node] = time.monotonic()
        self._last_error.pop(node, None)

    def _check(self) -> None:
        now = time.monotonic()
        for node, endpoint in self.endpoints.items():
            if node in self.lost:
                continue
            with self._lock:
                last = self._last_ok[node]
            since = last if last is not None else self._started_at
            assert since is not None
            silent = now - since
            if silent <= self.lost_after_s:
                continue
            what = "since its last heartbeat" if last is not None else "since monitoring began"
            reason = (
                f"no heartbeat from {endpoint} for {silent:.2f} s {what} "
                f"(limit {self.lost_after_s:g} s)"
            )
            if node in self._last_error:
                reason += f"; last error: {self._last_error[node]}"
            self._declare(node, reason, now)

    def _declare(self, node: str, reason: str, now: float) -> None:
        with self._lock:
            if node in self.lost:  # exactly once
                return
            self.lost[node] = reason
            self._declared_at[node] = now
        self.lost_event.set()
        log.error("%s: node %r lost: %s", self.name, node, reason)
        client = self._clients.pop(node, None)
        if client is not None:
            client.close()
        if self.safe_on_loss:
            self._safe_others(node)
        try:
            self.on_lost(node, reason)
        except Exception:  # a faulty callback must not stop the heartbeats of the others
            log.exception("%s: on_lost(%r) raised", self.name, node)

    def _safe_others(self, lost: str) -> None:
        """``safe_state`` on every other monitored node through the monitor's own clients."""
        for node in self.endpoints:
            if node == lost or node in self.lost:
                continue
            try:
                client = self._client(node)
                failures = client.request("safe_state", timeout_s=self.lost_after_s)
                for role, message in dict(failures or {}).items():
                    self.safe_failures[f"{node}.{role}"] = message
            except Exception as exc:  # every node is tried
                self.safe_failures[node] = f"{type(exc).__name__}: {exc}"
                log.error("%s: safe_state on %r failed: %s", self.name, node, exc)


def make_others_safe(nodes: Mapping[str, Any], lost: str) -> dict[str, str]:
    """``safe_state()`` on every node of ``nodes`` except ``lost``; returns the failures.

    Every node is tried, none skipped. An exception is reported under the node's name; a
    node's own per-instrument failures (``safe_state()`` returns them) as ``node.role``.
    The values are ``NodeController``s or ``RemoteNode``s; a ``RemoteNode``'s client is not
    thread-safe, so call this from the thread that owns them (the orchestrator's run loop,
    after ``HeartbeatMonitor.raise_if_lost()`` raised ``NodeLost``), never from ``on_lost``.
    """
    if lost not in nodes:
        log.warning("make_others_safe: lost node %r is not among %s", lost, sorted(nodes))
    failures: dict[str, str] = {}
    for name, node in nodes.items():
        if name == lost:
            continue
        try:
            result = node.safe_state()
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
            continue
        for role, message in dict(result or {}).items():
            failures[f"{name}.{role}"] = message
    return failures
