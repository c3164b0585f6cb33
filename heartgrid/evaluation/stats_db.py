"""The stats database on disk: one DuckDB file, fed by shard files, merged under a lock.

    shard = write_shard("evals.duckdb", card)   # this evaluation's rows, in a file of its own
    merge_shards("evals.duckdb")                # move every finished shard into the database
    with reading("evals.duckdb") as conn: ...   # merge, then query it read-only

Why shards: a DuckDB file has one writer at a time, and evaluations of several checkpoints run
at once (one per GPU, or beside training). Each evaluation writes its rows to
`<db>.shards/<pid>-<uuid>.duckdb`, under a temporary name renamed into place once the file is
closed, so a shard that is visible is complete. Merging takes an exclusive `flock` on
`<db>.lock` (waiting for the holder, whose record names it), copies each shard's rows into the
database in one transaction that also records the shard's name in `merged_shards`, then deletes
the shard: a merge killed at any point loses no row and doubles none (a shard already recorded
is only deleted). The end of every evaluation and every `heartgrid stats` read merges.
A training run that resumes writes a retraction shard (`write_retraction`): its evaluations of
epochs after the checkpoint it resumed from were the interrupted attempt's, and every merge
deletes them, like the metrics.jsonl and TensorBoard records of those epochs.
A shard DuckDB cannot open is renamed `<name>.corrupt` and reported, never deleted.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from heartgrid.checkpoint.durable import fsync_dir
from heartgrid.errors import UsageError
from heartgrid.evaluation.scorecard import Scorecard, utc_now
from heartgrid.evaluation.stats_schema import (
    ROW_TABLES,
    SCHEMA_VERSION,
    SHARED_TABLES,
    TABLES,
    apply_retractions,
    create_main_schema,
    create_tables,
    insert_rows,
    scorecard_rows,
)

LOCK_WAIT_S = 600.0
SHARD_SUFFIX = ".duckdb"


class StatsDbError(UsageError):
    """A stats database that is missing, unreadable or not HeartGrid's (exit status 2)."""


def shards_dir(db: Path) -> Path:
    return db.with_name(db.name + ".shards")


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


# --------------------------------------------------------------------------------------------
# Writing


def write_shard(db: str | Path, card: Scorecard) -> Path:
    """Write `card`'s rows to a new shard file of `db`; returns its path."""
    return _write_shard(db, lambda name: scorecard_rows(card, name))


def write_retraction(db: str | Path, runs: list[str], after_epoch: int) -> Path:
    """Retract, from now on, the evaluations of the policies of epochs after `after_epoch` of
    the runs named `runs` made so far (a training run resumed from that epoch's checkpoint,
    under its name and, copied as a branch, its earlier one: those policies were the
    interrupted attempt's). Written as a shard like an evaluation, so that training never
    waits for the database's lock; the next merge applies it."""
    now = utc_now()
    return _write_shard(db, lambda name: {"retractions": [(run, after_epoch, now) for run in runs]})


def _write_shard(db: str | Path, rows_of: Callable[[str], dict[str, list[tuple[Any, ...]]]]) -> Path:
    directory = shards_dir(Path(db))
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{uuid.uuid4().hex}"
    tmp = directory / f".{name}{SHARD_SUFFIX}.tmp"
    final = directory / f"{name}{SHARD_SUFFIX}"
    try:
        conn = duckdb.connect(str(tmp))
        try:
            create_tables(conn)
            conn.execute("BEGIN TRANSACTION")
            for table, rows in rows_of(final.name).items():
                insert_rows(conn, table, rows)
            conn.execute("COMMIT")
            conn.execute("CHECKPOINT")  # everything in the file itself, no write-ahead log beside it
        finally:
            conn.close()
    except duckdb.IOException as e:  # the disk, not the data: the caller reports it as a file fault
        for path in (tmp, tmp.with_name(tmp.name + ".wal")):
            path.unlink(missing_ok=True)
        raise OSError(errno.EIO, _one_line(e), str(tmp)) from None
    os.replace(tmp, final)  # visible only when complete
    fsync_dir(directory)
    return final


# --------------------------------------------------------------------------------------------
# Merging


@dataclass
class MergeReport:
    shards: int = 0
    episodes: int = 0
    retracted: int = 0  # episodes deleted by retractions
    corrupt: list[Path] = field(default_factory=list)


@contextmanager
def db_lock(db: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Exclusive flock on `<db>.lock`, waited for up to `wait_s` seconds."""
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise StatsDbError(f"{db}: {holder} has held {path} for over {wait_s:.0f} s; "
                                       "wait for it to finish, or stop it") from None
                time.sleep(0.05)
        handle.seek(0)
        handle.truncate()
        handle.write(f"PID {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def connect_main(db: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the database (created with its schema when writing to a new file);
    StatsDbError saying what to do when the file is not a HeartGrid stats database."""
    if read_only and not db.exists():
        raise missing_db(db)
    try:
        conn = duckdb.connect(str(db), read_only=read_only)
    except duckdb.Error as e:
        refuse_other_file(db)  # another file given by mistake (config.json): keep it
        raise StatsDbError(f"{db}: not a readable DuckDB database ({_one_line(e)}); move it aside "
                           f"(mv {db} {db}.bad) and write a new one with heartgrid eval URI --suite "
                           f"SUITE --stats-db {db}") from None
    try:
        version = conn.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
    except duckdb.CatalogException:
        version = None
        if not read_only and not conn.execute("SHOW TABLES").fetchall():
            create_main_schema(conn)  # a new, empty file
            return conn
    except duckdb.Error as e:
        conn.close()
        raise StatsDbError(f"{db}: damaged database ({_one_line(e)}); move it aside (mv {db} "
                           f"{db}.bad) and write a new one with heartgrid eval --stats-db") from None
    if version is None or version[0] != str(SCHEMA_VERSION):
        conn.close()
        found = "no schema_info table" if version is None else f"schema version {version[0]}"
        raise StatsDbError(f"{db}: not a HeartGrid stats database of schema version "
                           f"{SCHEMA_VERSION} ({found}); give another --stats-db path")
    if not read_only:
        create_main_schema(conn)  # views of a newer HeartGrid replace older ones
    return conn


def refuse_other_file(db: Path) -> None:
    """StatsDbError for an existing file that is neither named nor made as a DuckDB database
    (a run's config.json given by mistake), before any lock or shard is made beside it."""
    if db.is_file() and db.suffix != SHARD_SUFFIX:
        with open(db, "rb") as handle:
            if handle.read(12)[8:12] != b"DUCK":  # how every DuckDB database file starts
                raise StatsDbError(f"{db}: not a DuckDB database; give the path of a stats database, "
                                   "e.g. runs/RUN/stats.duckdb")


def missing_db(db: Path) -> StatsDbError:
    return StatsDbError(f"no stats database at {db}; write one with heartgrid eval URI --suite "
                        f"SUITE --stats-db {db}")


def pending_shards(db: Path) -> list[Path]:
    directory = shards_dir(db)
    return sorted(directory.glob(f"*{SHARD_SUFFIX}")) if directory.is_dir() else []


def merge_shards(db: str | Path) -> MergeReport:
    """Move every finished shard of `db` into it (creating it if need be), under the lock."""
    db = Path(db)
    with db_lock(db):
        return _merge_locked(db)


def _merge_locked(db: Path) -> MergeReport:
    report = MergeReport()
    shards = pending_shards(db)
    if shards:
        conn = connect_main(db)
        try:
            for shard in shards:
                _merge_one(conn, shard, report)
        finally:
            conn.close()
    for path in report.corrupt:
        warnings.warn(f"stats shard {path} cannot be read and was not merged; its rows are kept "
                      "there until the file is repaired or removed", stacklevel=3)
    return report


def _merge_one(conn: duckdb.DuckDBPyConnection, shard: Path, report: MergeReport) -> None:
    done = conn.execute("SELECT 1 FROM merged_shards WHERE shard = ?", [shard.name]).fetchone()
    if done:  # merged by a run that stopped before deleting it
        shard.unlink(missing_ok=True)
        return
    quoted = str(shard).replace("'", "''")
    try:
        conn.execute(f"ATTACH '{quoted}' AS shard (READ_ONLY)")
    except duckdb.Error:
        corrupt = shard.with_name(shard.name + ".corrupt")
        os.replace(shard, corrupt)
        report.corrupt.append(corrupt)
        return
    try:
        conn.execute("BEGIN TRANSACTION")
        held = {row[0] for row in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'shard'").fetchall()}
        for table in SHARED_TABLES + ROW_TABLES:
            if table not in held:  # retractions: not in a shard of an older HeartGrid
                continue
            columns = ", ".join(name for name, _ in TABLES[table])
            verb = "INSERT OR IGNORE" if table in SHARED_TABLES else "INSERT"
            conn.execute(f"{verb} INTO main.{table} ({columns}) SELECT {columns} FROM shard.{table}")
        episodes = conn.execute("SELECT count(*) FROM shard.episodes").fetchone()[0]
        carries = "retractions" in held and conn.execute("SELECT count(*) FROM shard.retractions").fetchone()[0]
        # Rows merged before were covered by every earlier retraction: a shard's evaluations
        # alone need checking, unless the shard brings a retraction.
        report.retracted += apply_retractions(conn, None if carries else shard.name)
        conn.execute("INSERT INTO merged_shards VALUES (?, now(), ?)", [shard.name, episodes])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("DETACH shard")
    shard.unlink()
    report.shards += 1
    report.episodes += episodes


# --------------------------------------------------------------------------------------------
# Reading


@contextmanager
def reading(db: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Merge pending shards, then a read-only connection, all under the lock (DuckDB refuses
    to open a file read-only while another process has it open for writing)."""
    db = Path(db)
    if not db.exists() and not pending_shards(db):
        raise missing_db(db)  # before the lock: a mistyped path leaves no lock file behind
    refuse_other_file(db)
    with db_lock(db):
        _merge_locked(db)
        conn = connect_main(db, read_only=True)
        try:
            yield conn
        finally:
            conn.close()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
