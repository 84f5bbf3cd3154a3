"""CURVE encryption and authentication of RpcServer / RpcClient over tcp://127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.auth
from pydantic import BaseModel, ValidationError

from control.messages import PROTOCOL_VERSION
from control.rpc import RpcClient, RpcServer, RpcTimeout
from control.security import KeyFileError, Security, generate_keypair, load_keypair

LOOPBACK = "tcp://127.0.0.1:*"


class Echo(BaseModel):
    value: int


METHODS = {"echo": (Echo, lambda a: a.value)}


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """A node key pair, an allowed client and a stranger (key not in allowed_clients/)."""
    node_pub, node_sec = generate_keypair(tmp_path / "node", "node")
    client_pub, client_sec = generate_keypair(tmp_path / "client", "orchestrator")
    _, stranger_sec = generate_keypair(tmp_path / "stranger", "stranger")
    allowed = tmp_path / "allowed_clients"
    allowed.mkdir()
    (allowed / client_pub.name).write_bytes(client_pub.read_bytes())
    return {
        "node_pub": node_pub,
        "node_sec": node_sec,
        "client_sec": client_sec,
        "stranger_sec": stranger_sec,
        "allowed": allowed,
    }


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.term()


def _server_security(keys: dict[str, Path]) -> Security:
    return Security(server_secret_key_file=keys["node_sec"], allowed_clients_dir=keys["allowed"])


def _server(keys: dict[str, Path], ctx: zmq.Context) -> RpcServer:
    return RpcServer("node-a", LOOPBACK, METHODS, security=_server_security(keys), context=ctx)


def _client_security(keys: dict[str, Path], secret: str = "client_sec") -> Security:
    return Security(client_secret_key_file=keys[secret], server_public_key_file=keys["node_pub"])


def test_allowed_client_round_trip_and_stranger_refused(
    keys: dict[str, Path], ctx: zmq.Context
) -> None:
    with _server(keys, ctx) as srv:
        assert srv.endpoint.startswith("tcp://127.0.0.1:")
        with RpcClient(srv.endpoint, "orch", security=_client_security(keys), context=ctx) as c:
            assert c.server.name == "node-a"
            assert c.call("echo", value=42) == 42
            # A key not in allowed_clients_dir: the handshake never completes, no reply.
            with pytest.raises(RpcTimeout, match="ZeroMQ sends no reply") as info:
                RpcClient(
                    srv.endpoint,
                    "intruder",
                    timeout_s=0.3,
                    security=_client_security(keys, "stranger_sec"),
                    context=ctx,
                )
            assert info.value.method == "hello"
            # The server keeps serving the allowed client (same connection and a new one).
            assert c.call("echo", value=7) == 7
            assert srv.calls == 2
        with RpcClient(srv.endpoint, "orch2", security=_client_security(keys), context=ctx) as c2:
            assert c2.call("echo", value=1) == 1


def test_wrong_server_key_times_out(
    keys: dict[str, Path], tmp_path: Path, ctx: zmq.Context
) -> None:
    other_pub, _ = generate_keypair(tmp_path / "other", "other-node")
    wrong = Security(client_secret_key_file=keys["client_sec"], server_public_key_file=other_pub)
    with _server(keys, ctx) as srv, pytest.raises(RpcTimeout):
        RpcClient(srv.endpoint, "orch", timeout_s=0.3, security=wrong, context=ctx)


def test_plaintext_client_cannot_talk_to_curve_server(
    keys: dict[str, Path], ctx: zmq.Context
) -> None:
    with _server(keys, ctx) as srv:
        with pytest.raises(RpcTimeout):
            RpcClient(srv.endpoint, "plain", timeout_s=0.3, security=None, context=ctx)
        with pytest.raises(RpcTimeout):
            RpcClient(
                srv.endpoint, "plain", timeout_s=0.3, security=Security(plaintext=True), context=ctx
            )
        # A raw ZMQ plaintext DEALER gets nothing back either.
        raw = ctx.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(srv.endpoint)
        try:
            hello = {"v": PROTOCOL_VERSION, "id": "1", "type": "hello", "name": "raw"}
            raw.send(msgpack.packb(hello))
            assert raw.poll(300) == 0
        finally:
            raw.close(0)
        assert srv.calls == 0


def test_traffic_is_encrypted(keys: dict[str, Path], ctx: zmq.Context) -> None:
    """Capture the TCP bytes between client and server through a forwarding proxy: the
    method name and a marker string never appear in clear."""
    import socket
    import threading

    marker = "SECRET-MARKER-0123456789"
    captured = bytearray()
    listener = socket.create_server(("127.0.0.1", 0))
    proxy_port = listener.getsockname()[1]

    with _server(keys, ctx) as srv:
        host, port = srv.endpoint.rsplit(":", 1)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    captured.extend(data)
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        def accept() -> None:
            conn, _ = listener.accept()
            upstream = socket.create_connection(("127.0.0.1", int(port)))
            threading.Thread(target=pump, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        endpoint = f"tcp://127.0.0.1:{proxy_port}"
        with RpcClient(endpoint, "orch", security=_client_security(keys), context=ctx) as c:
            assert c.call("echo", value=5) == 5
            with pytest.raises(Exception, match="value"):
                c.call("echo", value=marker)
        acceptor.join(2)
    listener.close()
    assert len(captured) > 200  # the handshake and four requests went through the proxy
    for clear in (b"echo", marker.encode(), b"hello", b"node-a"):
        assert clear not in captured


def test_plaintext_explicit_and_none_still_work(ctx: zmq.Context) -> None:
    plain = Security(plaintext=True)
    with RpcServer("node-p", LOOPBACK, METHODS, security=plain, context=ctx) as srv:
        with RpcClient(srv.endpoint, "c", security=plain, context=ctx) as c:
            assert c.call("echo", value=3) == 3
        with RpcClient(srv.endpoint, "c", security=None, context=ctx) as c:
            assert c.call("echo", value=4) == 4


def test_two_secured_servers_share_one_context(
    keys: dict[str, Path], tmp_path: Path, ctx: zmq.Context
) -> None:
    """One ZAP authenticator per context; each server checks its own allowed keys."""
    other_pub, other_sec = generate_keypair(tmp_path / "b", "node-b")
    allowed_b = tmp_path / "allowed_b"
    allowed_b.mkdir()
    stranger_pub = keys["stranger_sec"].with_suffix(".key")
    (allowed_b / stranger_pub.name).write_bytes(stranger_pub.read_bytes())
    sec_b = Security(server_secret_key_file=other_sec, allowed_clients_dir=allowed_b)
    with (
        _server(keys, ctx) as a,
        RpcServer("node-b", LOOPBACK, METHODS, security=sec_b, context=ctx) as b,
    ):
        to_b = Security(
            client_secret_key_file=keys["stranger_sec"], server_public_key_file=other_pub
        )
        with RpcClient(b.endpoint, "s", security=to_b, context=ctx) as c:
            assert c.call("echo", value=2) == 2
        with RpcClient(a.endpoint, "o", security=_client_security(keys), context=ctx) as c:
            assert c.call("echo", value=1) == 1
        with pytest.raises(RpcTimeout):
            RpcClient(
                a.endpoint,
                "s",
                timeout_s=0.3,
                security=Security(
                    client_secret_key_file=keys["stranger_sec"],
                    server_public_key_file=keys["node_pub"],
                ),
                context=ctx,
            )
    # Both closed: the authenticator stopped, so a new one can start on the same context.
    with (
        _server(keys, ctx) as a,
        RpcClient(a.endpoint, "o", security=_client_security(keys), context=ctx) as c,
    ):
        assert c.call("echo", value=9) == 9


# --- key files ---------------------------------------------------------------------------------


def test_key_files_round_trip(tmp_path: Path) -> None:
    pub_path, sec_path = generate_keypair(tmp_path / "keys", "node-a")
    assert (pub_path.name, sec_path.name) == ("node-a.key", "node-a.key_secret")
    public, secret = load_keypair(sec_path)
    assert secret is not None and len(public) == len(secret) == 40
    assert zmq.curve_public(secret) == public
    assert load_keypair(pub_path) == (public, None)
    # The zmq.auth reader agrees (same format as zmq.auth.create_certificates).
    assert zmq.auth.load_certificate(sec_path) == (public, secret)
    assert zmq.auth.load_certificate(pub_path) == (public, None)
    # ... and keys made by zmq.auth load here.
    zpub, zsec = zmq.auth.create_certificates(tmp_path, "made-by-zmq")
    assert load_keypair(zsec) == zmq.auth.load_certificate(zsec)
    if os.name == "posix":
        assert stat.S_IMODE(sec_path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError, match="node-a"):
        generate_keypair(tmp_path / "keys", "node-a")
    with pytest.raises(ValueError, match="plain file name"):
        generate_keypair(tmp_path, "../escape")
    # A second pair is a different key.
    _, sec2 = generate_keypair(tmp_path / "keys", "node-b")
    assert load_keypair(sec2)[0] != public


def test_load_keypair_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="file not found"):
        load_keypair(tmp_path / "nope.key")
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_keypair(tmp_path)
    junk = tmp_path / "junk.key"
    junk.write_text("hello\n")
    with pytest.raises(KeyFileError, match="no 'public-key"):
        load_keypair(junk)
    short = tmp_path / "short.key"
    short.write_text('curve\n    public-key = "abc"\n')
    with pytest.raises(KeyFileError, match="3 characters; expected a 40-character"):
        load_keypair(short)
    pub, sec = generate_keypair(tmp_path, "a")
    _, sec_b = generate_keypair(tmp_path, "b")
    mixed = tmp_path / "mixed.key_secret"
    secret_line = next(x for x in sec_b.read_text().splitlines() if "secret-key" in x)
    mixed.write_text(pub.read_text() + secret_line + "\n")
    with pytest.raises(KeyFileError, match="does not belong"):
        load_keypair(mixed)


# --- configuration errors ----------------------------------------------------------------------


def _error_text(**fields: object) -> str:
    with pytest.raises(ValidationError) as info:
        Security(**fields)  # type: ignore[arg-type]
    return str(info.value)


def test_bad_config_errors_name_field_value_and_expectation(
    keys: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.key_secret"
    text = _error_text(server_secret_key_file=missing, allowed_clients_dir=keys["allowed"])
    assert "server_secret_key_file" in text and str(missing) in text and "file not found" in text

    # A public key file where a secret one is expected.
    text = _error_text(
        client_secret_key_file=keys["node_pub"], server_public_key_file=keys["node_pub"]
    )
    assert "client_secret_key_file" in text and "has no secret-key" in text
    assert str(keys["node_pub"]) in text

    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"\x00\xff not a key")
    text = _error_text(client_secret_key_file=keys["client_sec"], server_public_key_file=garbage)
    assert "server_public_key_file" in text and "expected a ZeroMQ CURVE key file" in text

    empty = tmp_path / "empty_dir"
    empty.mkdir()
    text = _error_text(server_secret_key_file=keys["node_sec"], allowed_clients_dir=empty)
    assert "allowed_clients_dir" in text and "no '*.key' files" in text

    text = _error_text(
        server_secret_key_file=keys["node_sec"], allowed_clients_dir=keys["node_sec"]
    )
    assert "allowed_clients_dir" in text and "not a directory" in text

    text = _error_text()
    assert "plaintext=True" in text and "server_secret_key_file" in text

    text = _error_text(plaintext=True, server_secret_key_file=keys["node_sec"])
    assert "plaintext" in text and "together with key files" in text

    text = _error_text(server_secret_key_file=keys["node_sec"], curve="yes")
    assert "curve" in text and "Extra inputs are not permitted" in text

    if os.name == "posix" and os.geteuid() != 0:
        locked = tmp_path / "locked.key_secret"
        locked.write_bytes(keys["node_sec"].read_bytes())
        locked.chmod(0)
        text = _error_text(server_secret_key_file=locked, allowed_clients_dir=keys["allowed"])
        assert "server_secret_key_file" in text and "unreadable" in text


def test_role_checks_name_missing_fields(keys: dict[str, Path]) -> None:
    client_only = _client_security(keys)
    with pytest.raises(ValueError, match="server_secret_key_file, allowed_clients_dir not set"):
        RpcServer("x", LOOPBACK, METHODS, security=client_only)
    server_only = _server_security(keys)
    with pytest.raises(ValueError, match="client_secret_key_file, server_public_key_file not set"):
        RpcClient("tcp://127.0.0.1:1", "c", security=server_only)
    with pytest.raises(TypeError, match="expected a control.security.Security"):
        RpcServer("x", LOOPBACK, METHODS, security="curve")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a control.security.Security"):
        RpcClient("tcp://127.0.0.1:1", "c", security={"plaintext": True})  # type: ignore[arg-type]


def test_a_context_with_a_foreign_authenticator_is_refused_naming_why(
    keys: dict[str, Path], ctx: zmq.Context
) -> None:
    """The ZAP endpoint of a context taken by another authenticator (not ours) is not
    released by waiting: after the wait for a just-stopped one, the server is refused."""
    from zmq.auth.thread import ThreadAuthenticator

    foreign = ThreadAuthenticator(ctx)
    foreign.start()
    try:
        with pytest.raises(RuntimeError, match="another one already runs on this zmq.Context"):
            _server(keys, ctx)
    finally:
        foreign.stop()
