"""The network's CURVE keys by convention: one folder (``security.keys_dir`` of the network
file) holds every node's and the orchestrator's key pair and an ``allowed/`` folder with the
public keys node controllers accept. Copy the folder (secret files only where they belong)
to each PC: the same keys work across PCs."""

from __future__ import annotations

import shutil
from pathlib import Path

from .network_config import LoadedNetwork, NetworkConfigError
from .security import PUBLIC_SUFFIX, SECRET_SUFFIX, Security, generate_keypair

ORCHESTRATOR = "orchestrator"


def keys_dir(loaded: LoadedNetwork) -> Path | None:
    if loaded.config.security is None:
        return None
    return (loaded.path.parent / loaded.config.security.keys_dir).resolve()


def generate_network_keys(loaded: LoadedNetwork) -> list[Path]:
    """Key pairs for every node and the orchestrator, and the orchestrator's public key in
    ``allowed/``; existing keys are kept (never overwritten)."""
    folder = keys_dir(loaded)
    if folder is None:
        raise NetworkConfigError(
            f"{loaded.path}: security: not configured; add `security: {{keys_dir: keys}}`"
        )
    written = []
    for name in [*loaded.config.nodes, ORCHESTRATOR]:
        if not (folder / f"{name}{SECRET_SUFFIX}").exists():
            written += list(generate_keypair(folder, name))
    allowed = folder / "allowed"
    allowed.mkdir(parents=True, exist_ok=True)
    public = folder / f"{ORCHESTRATOR}{PUBLIC_SUFFIX}"
    shutil.copyfile(public, allowed / public.name)
    return written


def node_security(loaded: LoadedNetwork, node: str, plaintext: bool) -> Security:
    """What the node controller ``node`` serves with."""
    folder = keys_dir(loaded)
    if folder is None:
        return _plaintext_or_fail(loaded, plaintext)
    return Security(
        server_secret_key_file=folder / f"{node}{SECRET_SUFFIX}",
        allowed_clients_dir=folder / "allowed",
    )


def orchestrator_security(loaded: LoadedNetwork, node: str, plaintext: bool) -> Security:
    """What the orchestrator connects to node ``node`` with."""
    folder = keys_dir(loaded)
    if folder is None:
        return _plaintext_or_fail(loaded, plaintext)
    return Security(
        client_secret_key_file=folder / f"{ORCHESTRATOR}{SECRET_SUFFIX}",
        server_public_key_file=folder / f"{node}{PUBLIC_SUFFIX}",
    )


def _plaintext_or_fail(loaded: LoadedNetwork, plaintext: bool) -> Security:
    if not plaintext:
        raise NetworkConfigError(
            f"{loaded.path}: security: no keys configured; add `security: {{keys_dir: keys}}` "
            "and run `qnode keygen`, or pass --plaintext for a local dry run"
        )
    return Security(plaintext=True)
