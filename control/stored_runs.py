"""Reading stored runs back: the database, a run by id (saying which runs exist when it is
not there), its qnode metadata and column spec, and how far it got (for ``--resume``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qcodes.dataset import connect, load_by_id
from qcodes.dataset.data_set import DataSet
from qcodes.dataset.sqlite.connection import AtomicConnection
from qcodes.dataset.sqlite.database import set_journal_mode

from .shot_columns import Column

DEFAULT_DB_PATH = Path("runs/qnode.db")
METADATA_PREFIX = "qnode_"


def open_database(
    db_path: str | Path, *, create: bool = True, writer: bool = True
) -> AtomicConnection:
    """A QCoDeS connection to ``db_path``. ``create``: make the folder and file if missing
    (otherwise a missing file is a FileNotFoundError). ``writer``: switch the database to
    WAL journaling (as ``initialise_or_create_database_at`` does), so readers never block the
    writer and each commit is one append to the log."""
    path = Path(db_path).expanduser().absolute()
    if not create and not path.is_file():
        raise FileNotFoundError(f"database {str(path)!r} does not exist")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    if writer:
        set_journal_mode(conn, "WAL")
    return conn


def load_run(conn: AtomicConnection, run_id: int) -> DataSet:
    """The dataset ``run_id`` of an open database, or a ValueError saying which runs exist."""
    try:
        ds = load_by_id(run_id, conn=conn)
    except (ValueError, RuntimeError, NameError) as exc:
        runs = [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
        raise ValueError(
            f"run_id={run_id!r}: no such run in {conn.path_to_dbfile}; runs there: {runs}"
        ) from exc
    assert isinstance(ds, DataSet)
    return ds


def read_metadata(ds: DataSet) -> dict[str, Any]:
    """The qnode metadata of a run, decoded (tags without the ``qnode_`` prefix)."""
    out: dict[str, Any] = {}
    for tag, raw in ds.metadata.items():
        if tag.startswith(METADATA_PREFIX):
            try:
                out[tag[len(METADATA_PREFIX) :]] = json.loads(raw)
            except (TypeError, ValueError):
                out[tag[len(METADATA_PREFIX) :]] = raw
    return out


def stored_columns(ds: DataSet) -> tuple[Column, ...]:
    """The column spec a run was declared with (without the ``shot`` setpoint)."""
    spec = read_metadata(ds).get("columns")
    if spec is None:
        raise ValueError(f"run {ds.run_id} was not written by qnode's ShotStore (no column spec)")
    return tuple(Column.from_dict(d) for d in spec)


def shot_stats(ds: DataSet) -> tuple[int, int | None]:
    row = ds.conn.execute(f'SELECT COUNT(*), MAX(shot) FROM "{ds.table_name}"').fetchone()
    return int(row[0]), None if row[1] is None else int(row[1])


@dataclass(frozen=True)
class ResumeInfo:
    run_id: int
    shots: int
    last_shot: int | None
    completed: bool
    status: str  # "completed" or "interrupted" (a run still being written also shows here)
    requested_shots: int | None
    remaining: int | None
    metadata: dict[str, Any]


def resume_info(run_id: int, db_path: str | Path = DEFAULT_DB_PATH) -> ResumeInfo:
    """How many shots a stored run holds, whether it finished, and its metadata."""
    conn = open_database(db_path, create=False, writer=False)
    try:
        ds = load_run(conn, run_id)
        meta = read_metadata(ds)
        shots, last = shot_stats(ds)
        requested = meta.get("requested_shots")
        return ResumeInfo(
            run_id=run_id,
            shots=shots,
            last_shot=last,
            completed=ds.completed,
            status="completed" if ds.completed else "interrupted",
            requested_shots=requested,
            remaining=None if requested is None else max(requested - shots, 0),
            metadata=meta,
        )
    finally:
        conn.close()
