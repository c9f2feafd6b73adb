"""Copying a whole instance to another database and blob store (``image-repo migrate``).

The tables are copied generically, in foreign-key order, from the SQLAlchemy
metadata: every table the models declare goes, including ones added after
this was written, with no change here. Rows are copied as they are (keys
with their hashes: it is the same instance, moving). Each batch is one
transaction on the target, and a row already there (same primary key) is
left alone, or updated when it differs, so a run can be interrupted and run
again, and a second run copies nothing.

Blobs: every original (checked against the SHA-256 in its key on the way),
every preview, and the other renditions when asked (they are a cache, made
again on demand). A blob already in the target is not copied again.

The target's schema is made by the same Alembic migrations as any database.
The run ends with a check of the target: every table holds as many rows as
the source's, and every image's bytes are there with the right hash
(``maintenance.fsck``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine, Integer, Table, and_, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from image_repo.db import migrate as schema
from image_repo.db.models import Base
from image_repo.domain import maintenance
from image_repo.storage import BlobStore, LocalBlobStore

BATCH = 500
PREVIEW_SUFFIX = "/preview"


@dataclass
class TableReport:
    rows: int = 0
    copied: int = 0
    updated: int = 0
    target_rows: int = 0


@dataclass
class MigrationReport:
    tables: dict[str, TableReport] = field(default_factory=dict)
    blobs_copied: int = 0
    blobs_present: int = 0
    bytes_copied: int = 0
    blobs_corrupt: list[str] = field(default_factory=list)  # source keys whose bytes are damaged
    check: maintenance.FsckReport | None = None

    @property
    def rows_copied(self) -> int:
        return sum(t.copied + t.updated for t in self.tables.values())

    @property
    def counts_match(self) -> bool:
        return all(t.rows == t.target_rows for t in self.tables.values())

    @property
    def ok(self) -> bool:
        return (
            self.counts_match and not self.blobs_corrupt and (self.check is None or self.check.ok)
        )

    def as_dict(self) -> dict:
        check = self.check
        return {
            "tables": {name: dict(t.__dict__) for name, t in self.tables.items()},
            "rows_copied": self.rows_copied,
            "blobs_copied": self.blobs_copied,
            "blobs_present": self.blobs_present,
            "bytes_copied": self.bytes_copied,
            "blobs_corrupt": self.blobs_corrupt,
            "check": None
            if check is None
            else {
                "checked": check.checked,
                "missing": check.missing,
                "corrupt": check.corrupt,
                "orphans": len(check.orphans),
                "counts_match": self.counts_match,
            },
            "ok": self.ok,
        }


def target_store(
    spec: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    addressing_style: str | None = None,
) -> BlobStore:
    """``s3://bucket/prefix`` (credentials from the usual AWS variables or role), or
    a data folder (its ``blobs/``, as ``IMAGE_REPO_DATA_DIR`` would use it)."""
    if spec.startswith("s3://"):
        from image_repo.storage import S3BlobStore

        bucket, _, prefix = spec.removeprefix("s3://").partition("/")
        return S3BlobStore(
            bucket,
            prefix=prefix,
            endpoint_url=endpoint_url,
            region=region,
            addressing_style=addressing_style,
        )
    return LocalBlobStore(Path(spec) / "blobs")


def tables() -> list[Table]:
    """Every table of the models, parents before children, and tables the
    database keeps itself (``info["kept_by_triggers"]``) last: copying rows
    fires the target's triggers, so such a table is set to the source's
    values only once every row it counts is there."""
    ordered = list(Base.metadata.sorted_tables)
    return sorted(ordered, key=lambda table: bool(table.info.get("kept_by_triggers")))


def count_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.scalar(select(func.count()).select_from(table))
            for table in tables()
        }


def prepare_target(engine: Engine) -> None:
    """The target's schema, by the migrations (a no-op when it is up to date)."""
    schema.upgrade(engine)


def _key_filter(table: Table, keys: list[tuple]):
    columns = list(table.primary_key.columns)
    if len(columns) == 1:
        return columns[0].in_([key[0] for key in keys])
    return or_(*(and_(*(c == v for c, v in zip(columns, key, strict=True))) for key in keys))


def _copy_batch(target: Engine, table: Table, rows: list[dict], report: TableReport) -> None:
    columns = list(table.primary_key.columns)
    keys = [tuple(row[c.key] for c in columns) for row in rows]
    with target.begin() as connection:
        there = {
            tuple(found[c.key] for c in columns): found
            for found in (
                dict(r._mapping)
                for r in connection.execute(select(table).where(_key_filter(table, keys)))
            )
        }
        new = [row for row, key in zip(rows, keys, strict=True) if key not in there]
        if new:
            connection.execute(insert(table), new)
            report.copied += len(new)
        for row, key in zip(rows, keys, strict=True):
            if key in there and there[key] != row:
                match = and_(*(c == v for c, v in zip(columns, key, strict=True)))
                connection.execute(update(table).where(match).values(row))
                report.updated += 1


def copy_tables(
    source: Engine,
    target: Engine,
    *,
    on_rows: Callable[[int], None] = lambda count: None,
) -> dict[str, TableReport]:
    """Copy every table, in ``tables()`` order: tables the target's triggers
    keep come last, so they end equal to the source in one pass."""
    reports = {}
    for table in tables():
        report = reports[table.name] = TableReport()
        order = list(table.primary_key.columns)
        with source.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=BATCH).execute(
                select(table).order_by(*order)
            )
            for batch in result.partitions(BATCH):
                rows = [dict(row._mapping) for row in batch]
                report.rows += len(rows)
                _copy_batch(target, table, rows, report)
                on_rows(len(rows))
    _advance_sequences(target)
    return reports


def _advance_sequences(target: Engine) -> None:
    """PostgreSQL: integer keys copied as they were leave their sequence behind."""
    if target.dialect.name != "postgresql":
        return
    with target.begin() as connection:
        for table in tables():
            columns = list(table.primary_key.columns)
            if len(columns) != 1 or not isinstance(columns[0].type, Integer):
                continue
            sequence = connection.scalar(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": columns[0].name},
            )
            if sequence:
                top = connection.scalar(select(func.max(columns[0])))
                connection.execute(
                    text("SELECT setval(:sequence, :value, :called)"),
                    {"sequence": sequence, "value": top or 1, "called": top is not None},
                )


class _Hashing:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.digest = stream, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        return data


def blob_keys(store: BlobStore, *, include_renditions: bool) -> list[str]:
    keys = list(store.iter_keys(maintenance.ORIGINALS))
    keys += [
        key
        for key in store.iter_keys(maintenance.RENDITIONS)
        if include_renditions or key.endswith(PREVIEW_SUFFIX)
    ]
    return keys


def copy_blobs(
    source: BlobStore,
    target: BlobStore,
    keys: list[str],
    report: MigrationReport,
    *,
    on_blob: Callable[[], None] = lambda: None,
) -> None:
    present = set(target.iter_keys(maintenance.ORIGINALS))
    present |= set(target.iter_keys(maintenance.RENDITIONS))
    for key in keys:
        if key in present:
            report.blobs_present += 1
        else:
            _copy_blob(source, target, key, report)
        on_blob()


def _copy_blob(source: BlobStore, target: BlobStore, key: str, report: MigrationReport) -> None:
    original = key.startswith(maintenance.ORIGINALS)
    with source.open(key) as stream:
        reader = _Hashing(stream)
        size = target.put(key, reader, durable=original)
    if original and reader.digest.hexdigest() != key.rsplit("/", 1)[-1]:
        # Damaged in the source: not carried over (fsck of the source names its image).
        target.delete(key)
        report.blobs_corrupt.append(key)
        return
    report.blobs_copied += 1
    report.bytes_copied += size


def check_target(
    target_session: Session,
    store: BlobStore,
    report: MigrationReport,
    target_counts: dict[str, int],
    *,
    progress=iter,
) -> None:
    for name, count in target_counts.items():
        report.tables.setdefault(name, TableReport()).target_rows = count
    rows = maintenance.image_rows(target_session)
    report.check = maintenance.fsck(target_session, store, rows, progress=progress)
