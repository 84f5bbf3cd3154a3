"""CURVE encryption and authentication of the control plane (ZeroMQ CURVE + ZAP).

Keys
----
``generate_keypair(directory, name)`` writes ``<name>.key`` (public key) and
``<name>.key_secret`` (public and secret key, mode 0600) in the ZeroMQ certificate format
(the one ``zmq.auth.create_certificates`` writes and ``zmq.auth.load_certificate`` reads).
Key files are plain text and machine-independent: copy them to the PC that needs them.

* each **node** (server) has a key pair; its public file goes to every orchestrator;
* each **orchestrator / operator** (client) has a key pair; its public file goes into the
  ``allowed_clients_dir`` of every node it may control (``*.key`` files in that directory).

Configuration
-------------
``Security`` names the files; a node uses ``server_secret_key_file`` + ``allowed_clients_dir``,
a client ``client_secret_key_file`` + ``server_public_key_file``. Every file is read and
checked when the model is built, so a bad path fails early with an error naming the field,
the value and what was expected. ``Security(plaintext=True)`` is the explicit request for an
unencrypted connection (local dry runs only).

Refusal
-------
A server authenticates clients through a ZAP handler (``zmq.auth.thread.ThreadAuthenticator``,
shared by all servers of one ``zmq.Context`` and stopped with the last of them). A client whose
public key is not allowed, or that uses the wrong server public key, never completes the
CURVE handshake: ZeroMQ sends no error reply to an unauthenticated peer, so the client just
sees its ``hello`` time out (``RpcTimeout``).
"""

from __future__ import annotations

import datetime
import logging
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import zmq
from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator, model_validator
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger(__name__)

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
_Z85_KEY_LENGTH = 40  # a 32-byte Curve25519 key in Z85


class KeyFileError(ValueError):
    """A key file is missing, unreadable or not a ZeroMQ CURVE key file."""


# --- key files ---------------------------------------------------------------------------------


def _key_text(banner: str, public: bytes, secret: bytes | None) -> str:
    now = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [
        f"#   ****  Generated on {now} by qnode (control.security)  ****",
        f"#   ZeroMQ CURVE {banner}",
        "#   Same format as zmq.auth.create_certificates.",
        "",
        "metadata",
        "curve",
        f'    public-key = "{public.decode("ascii")}"',
    ]
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"')
    return "\n".join(lines) + "\n"


def _write_new(path: Path, text: str, mode: int) -> None:
    # O_EXCL: never overwrite a key; the mode is set at creation, so a secret key is never
    # readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)


def generate_keypair(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Write a new CURVE key pair as ``<directory>/<name>.key`` (public) and
    ``<name>.key_secret`` (secret, mode 0600); returns ``(public_path, secret_path)``.

    The directory is created (mode 0700) if missing. Existing files are never overwritten
    (``FileExistsError``): delete them first to replace a key."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(f"name {name!r}: expected a plain file name (no path separators)")
    folder = Path(directory)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    public_path = folder / f"{name}{PUBLIC_SUFFIX}"
    secret_path = folder / f"{name}{SECRET_SUFFIX}"
    for path in (public_path, secret_path):
        if path.exists():
            raise FileExistsError(f"{path}: key file exists already; delete it to replace the key")
    public, secret = zmq.curve_keypair()
    _write_new(secret_path, _key_text("secret key (keep it private)", public, secret), 0o600)
    _write_new(public_path, _key_text("public key (share it)", public, None), 0o644)
    return public_path, secret_path


def _parse_key(value: bytes, what: str, path: Path) -> bytes:
    key = value.strip(b" \t'\"")
    if len(key) != _Z85_KEY_LENGTH:
        raise KeyFileError(
            f"{path}: {what} has {len(key)} characters; expected a {_Z85_KEY_LENGTH}-character "
            "Z85 key"
        )
    try:
        if len(zmq.utils.z85.decode(key)) != 32:
            raise ValueError("not 32 bytes")
    except Exception:
        raise KeyFileError(f"{path}: {what} is not a valid Z85 key") from None
    return key


def load_keypair(path: str | os.PathLike[str]) -> tuple[bytes, bytes | None]:
    """Read a ZeroMQ key file: ``(public_key, secret_key)`` as Z85 bytes; ``secret_key`` is
    None for a public key file. Raises ``KeyFileError`` (a ValueError) saying what is wrong;
    for a secret file, the secret key must match the public key."""
    path = Path(path)
    if not path.exists():
        raise KeyFileError(f"{path}: file not found")
    if not path.is_file():
        raise KeyFileError(f"{path}: not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: unreadable ({exc.strerror or exc})") from None
    if len(data) > 64 * 1024:
        raise KeyFileError(f"{path}: {len(data)} bytes; a key file is a few hundred bytes")
    public = secret = None
    for raw in data.splitlines():
        line = raw.strip()
        if line.startswith(b"#") or b"=" not in line:
            continue
        field, value = (part.strip() for part in line.split(b"=", 1))
        if field == b"public-key":
            public = _parse_key(value, "public-key", path)
        elif field == b"secret-key":
            secret = _parse_key(value, "secret-key", path)
    if public is None:
        raise KeyFileError(
            f"{path}: no 'public-key = \"...\"' line; expected a ZeroMQ CURVE key file "
            f"(from generate_keypair / zmq.auth.create_certificates)"
        )
    if secret is not None and zmq.curve_public(secret) != public:
        raise KeyFileError(f"{path}: the secret key does not belong to the public key")
    return public, secret


def _warn_if_exposed(path: Path) -> None:
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s: secret key readable by others (mode %o); chmod 600 it", path, mode & 0o777)


# --- configuration -----------------------------------------------------------------------------


def _need_secret(path: Path) -> tuple[bytes, bytes]:
    public, secret = load_keypair(path)
    if secret is None:
        raise KeyFileError(
            f"{path}: has no secret-key; expected the '{SECRET_SUFFIX}' file of a key pair"
        )
    _warn_if_exposed(path)
    return public, secret


class Security(BaseModel):
    """Which keys a node (server) or orchestrator (client) uses, or ``plaintext=True``.

    Node: ``server_secret_key_file`` and ``allowed_clients_dir``. Client:
    ``client_secret_key_file`` and ``server_public_key_file``. One model may hold both roles.
    Relative paths are relative to the working directory (resolve them against the config
    file's folder before building the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plaintext: bool = False
    server_secret_key_file: Path | None = None
    server_public_key_file: Path | None = None
    client_secret_key_file: Path | None = None
    allowed_clients_dir: Path | None = None

    _server_keys: tuple[bytes, bytes] | None = PrivateAttr(default=None)
    _server_public: bytes | None = PrivateAttr(default=None)
    _client_keys: tuple[bytes, bytes] | None = PrivateAttr(default=None)
    _allowed: frozenset[bytes] | None = PrivateAttr(default=None)

    @field_validator("server_secret_key_file", "client_secret_key_file")
    @classmethod
    def _secret_file(cls, path: Path | None) -> Path | None:
        if path is not None:
            _need_secret(path)  # raises KeyFileError -> the field's validation error
        return path

    @field_validator("server_public_key_file")
    @classmethod
    def _public_file(cls, path: Path | None) -> Path | None:
        if path is not None:
            load_keypair(path)
        return path

    @field_validator("allowed_clients_dir")
    @classmethod
    def _clients_dir(cls, path: Path | None) -> Path | None:
        if path is not None:
            _load_allowed(path)
        return path

    @model_validator(mode="after")
    def _consistent(self) -> Security:
        keys = [name for name in _KEY_FIELDS if getattr(self, name) is not None]
        if self.plaintext and keys:
            raise ValueError(
                f"plaintext: True together with key files ({', '.join(keys)}); expected either "
                "plaintext=True (no encryption, local dry runs) or key files"
            )
        if not self.plaintext and not keys:
            raise ValueError(
                "no key files and plaintext is False; expected server_secret_key_file + "
                "allowed_clients_dir (node), client_secret_key_file + server_public_key_file "
                "(client), or plaintext=True to run unencrypted on purpose"
            )
        # The files were checked by the field validators; keep the keys read once.
        if self.server_secret_key_file is not None:
            self._server_keys = load_keypair(self.server_secret_key_file)  # type: ignore[assignment]
        if self.client_secret_key_file is not None:
            self._client_keys = load_keypair(self.client_secret_key_file)  # type: ignore[assignment]
        if self.server_public_key_file is not None:
            self._server_public = load_keypair(self.server_public_key_file)[0]
        if self.allowed_clients_dir is not None:
            self._allowed = _load_allowed(self.allowed_clients_dir)
        return self

    # --- per role ------------------------------------------------------------------------------

    def _require(self, role: str, *fields: str) -> None:
        missing = [f for f in fields if getattr(self, f) is None]
        if missing:
            raise ValueError(
                f"security for a {role}: {', '.join(missing)} not set; expected "
                f"{' and '.join(fields)} (or plaintext=True)"
            )

    def server_keys(self) -> tuple[bytes, bytes, frozenset[bytes]]:
        """(public, secret, allowed client public keys) of a CURVE server."""
        self._require("server (node)", "server_secret_key_file", "allowed_clients_dir")
        assert self._server_keys is not None and self._allowed is not None
        return (*self._server_keys, self._allowed)

    def client_keys(self) -> tuple[bytes, bytes, bytes]:
        """(public, secret, server public key) of a CURVE client."""
        self._require("client", "client_secret_key_file", "server_public_key_file")
        assert self._client_keys is not None and self._server_public is not None
        return (*self._client_keys, self._server_public)

    def apply_server(self, sock: zmq.Socket, domain: str) -> None:
        """Make ``sock`` (before ``bind``) a CURVE server authenticated in ZAP ``domain``."""
        public, secret, _ = self.server_keys()
        sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.setsockopt(zmq.CURVE_SERVER, 1)

    def apply_client(self, sock: zmq.Socket) -> None:
        """Give ``sock`` (before ``connect``) its CURVE keys and the server's public key."""
        public, secret, server = self.client_keys()
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.setsockopt(zmq.CURVE_SERVERKEY, server)


_KEY_FIELDS = (
    "server_secret_key_file",
    "server_public_key_file",
    "client_secret_key_file",
    "allowed_clients_dir",
)


def _load_allowed(path: Path) -> frozenset[bytes]:
    if not path.exists():
        raise KeyFileError(f"{path}: directory not found")
    if not path.is_dir():
        raise KeyFileError(f"{path}: not a directory; expected a folder of '*.key' files")
    try:
        files = sorted(path.glob(f"*{PUBLIC_SUFFIX}"))
    except OSError as exc:
        raise KeyFileError(f"{path}: unreadable ({exc.strerror or exc})") from None
    if not files:
        raise KeyFileError(
            f"{path}: no '*{PUBLIC_SUFFIX}' files; expected the public keys of the allowed "
            "clients (no client could connect)"
        )
    return frozenset(load_keypair(f)[0] for f in files)


# --- ZAP authentication, one authenticator per context ----------------------------------------


class _AllowedKeys:
    """A ``configure_curve_callback`` provider: is this client key allowed?"""

    def __init__(self, keys: frozenset[bytes], server: str) -> None:
        self.keys = keys
        self.server = server

    def callback(self, domain: str, key: bytes) -> bool:
        allowed = key in self.keys
        if not allowed:
            log.warning("%s: refused a client with public key %s", self.server, key.decode())
        return allowed


_auth_lock = threading.Lock()
_authenticators: dict[int, tuple[zmq.Context, ThreadAuthenticator, set[str]]] = {}


def attach_authenticator(
    context: zmq.Context, domain: str, allowed: frozenset[bytes], server: str
) -> None:
    """Authenticate CURVE clients of ZAP ``domain`` on ``context`` against ``allowed`` keys;
    starts the context's ``ThreadAuthenticator`` for its first domain."""
    with _auth_lock:
        entry = _authenticators.get(id(context))
        if entry is None or entry[0] is not context:
            auth = _started_authenticator(context)
            entry = (context, auth, set())
            _authenticators[id(context)] = entry
        _, auth, domains = entry
        auth.configure_curve_callback(domain, _AllowedKeys(allowed, server))
        domains.add(domain)


#: How long a new ZAP authenticator waits for a stopped one's endpoint to be released.
_ZAP_RELEASE_S = 1.0


def _started_authenticator(context: zmq.Context) -> ThreadAuthenticator:
    """A started ``ThreadAuthenticator`` on ``context``. ZeroMQ releases a closed socket's
    inproc endpoint in its reaper thread, shortly after the close returns: right after
    another authenticator on this context stopped, binding the ZAP endpoint is tried again
    for up to ``_ZAP_RELEASE_S``."""
    deadline = time.monotonic() + _ZAP_RELEASE_S
    while True:
        auth = ThreadAuthenticator(context, log=logging.getLogger("zmq.auth"))
        try:
            auth.start()
            return auth
        except zmq.ZMQError as exc:
            auth.stop()
            if exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise RuntimeError(
                    f"cannot start the ZAP authenticator ({exc}): another one already runs on "
                    "this zmq.Context; give the RpcServer its own context"
                ) from None
            time.sleep(0.01)


def detach_authenticator(context: zmq.Context, domain: str) -> None:
    """Forget ``domain``; stops the context's authenticator when no domain is left."""
    with _auth_lock:
        entry = _authenticators.get(id(context))
        if entry is None or entry[0] is not context:
            return
        _, auth, domains = entry
        domains.discard(domain)
        auth.credentials_providers.pop(domain, None)
        if not domains:
            del _authenticators[id(context)]
            auth.stop()


def describe(security: Security | None) -> str:
    """'curve', 'plaintext' or 'none' (for logs and pings)."""
    if security is None:
        return "none"
    return "plaintext" if security.plaintext else "curve"


def check(security: Any) -> Security | None:
    """``security`` if it is a ``Security`` or None; anything else is refused."""
    if security is None or isinstance(security, Security):
        return security
    raise SecurityTypeError(
        f"security {type(security).__name__} value: expected a control.security.Security "
        "(CURVE key files, or plaintext=True) or None"
    )


class SecurityTypeError(TypeError, NotImplementedError):
    """``security=`` got something other than a ``Security``. (Also a NotImplementedError
    for code written when CURVE was not implemented and any value raised that.)"""
