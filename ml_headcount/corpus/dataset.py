"""The registered dataset: CVs that arrive as files in an inbox, registered once.

Layout in storage, under `datasets/<name>/`:

- `<name>.parquet`: the registered CVs, one row per distinct cleaned text
  (`cv_id`, `text_hash`, `category`, `text` and where each came from). Append
  only: a registration adds rows and never changes or drops one. The
  `cv-keywords` flow reads it with `ml_headcount.corpus.ingest` like any CV table.
- `rejected.parquet`: every input row that did not become a CV, with its reason
  (unusable, duplicate within its file, or already registered).
- `files.parquet`: every inbox file processed, keyed by location and sha256, so
  the same content at the same place is never ingested twice and a file that
  changed is noticed. Written last for each file: it is the commit record, so a
  crash before it means the file is simply processed again.
- `ingestions/<ingestion-id>.json`: what one ingestion found and did.

A malformed file (unreadable, or without a text or label column) is moved, by
its exact key (a name like `*.csv` or `[bad].csv` is that one file), to the
inbox's quarantine folder with a `.reason.txt` beside it and recorded; the
other files go on, as they do when one file's registration fails otherwise.

Concurrent ingestions are safe: each table is changed by an atomic
read-modify-write (`ArtifactStore.update`: a file lock locally, a conditional
PUT on S3), redone on the newer table when another ingestion got there first,
so no CV is lost and none is registered twice.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath

import pandas as pd

from ml_headcount.config import InboxSettings, IngestSettings, StorageSettings
from ml_headcount.corpus.ingest import IngestResult, ingest_file
from ml_headcount.corpus.kept_and_rejected import REJECTED_COLUMNS
from ml_headcount.errors import InputError
from ml_headcount.io.storage import ArtifactStore, check_name
from ml_headcount.io.urls import redact_url, stream_sha256
from ml_headcount.runs.markdown import markdown_text as md

DATASET_COLUMNS = [
    "cv_id",
    "text_hash",
    "category",
    "text",
    "source_file",
    "source_sha256",
    "source_row",
    "ingestion_id",
]
# the rejected rows of every registered file: ingest's own columns, after the file and the ingestion they came from
DATASET_REJECTED_COLUMNS = ["ingestion_id", "source_file", "source_sha256", *REJECTED_COLUMNS]


@dataclass(frozen=True)
class InboxFile:
    """A file waiting in the inbox: its name there, the location and content it is recorded by."""

    key: str  # name inside the inbox
    location: str  # local path or s3:// URL: the identity recorded in files.parquet
    sha256: str
    changed_from: str | None = None  # sha256 recorded earlier for the same location


@dataclass(frozen=True)
class FileOutcome:
    """One row of files.parquet."""

    file: str
    sha256: str
    status: str  # "registered" or "quarantined"
    ingestion_id: str
    processed_at: str
    rows: int = 0
    registered: int = 0
    duplicates: int = 0
    rejected: int = 0
    error: str = ""
    moved_to: str = ""
    changed_from: str = ""


FILE_COLUMNS = list(FileOutcome.__dataclass_fields__)


class Inbox:
    """The files directly inside a local directory or below an s3:// prefix."""

    def __init__(self, settings: InboxSettings, storage: StorageSettings):
        # same fsspec access (endpoint, region) as the artifact store, rooted at the inbox
        self.store = ArtifactStore(storage.model_copy(update={"url": settings.url}))
        self.quarantine = settings.quarantine

    @property
    def location(self) -> str:
        return redact_url(self.store.location(""))

    @property
    def missing(self) -> bool:
        """A local inbox folder that does not exist (likely a mistake: nothing can ever arrive there); an S3 prefix
        without objects is only empty."""
        return self.store.is_local and not self.store.fs.isdir(self.store.root)

    def waiting(self) -> list[str]:
        """Names of the files waiting, sorted; folders (the quarantine) and hidden files are not inputs."""
        try:
            entries = self.store.fs.ls(self.store.root, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        names = (PurePosixPath(e["name"].rstrip("/")).name for e in entries if e["type"] == "file")
        # a leading dot marks hidden files and the partial files of many copy tools
        return sorted(n for n in names if not n.startswith("."))

    def sha256(self, key: str) -> str:
        with self.store.fs.open(self._path(key), "rb") as handle:
            return stream_sha256(handle)

    def move_aside(self, key: str, reason: str, ingestion_id: str) -> str:
        """Move a malformed file to the quarantine folder, reason beside it; '' when quarantine is off."""
        if not self.quarantine:
            return ""
        target = f"{self.quarantine}/{ingestion_id}/{key}"
        self.store.write_text(f"{target}.reason.txt", reason + "\n")
        return redact_url(self.store.move(key, target))

    def _path(self, key: str) -> str:
        return f"{self.store.root.rstrip('/')}/{key}"


class RegisteredDataset:
    """The tables of one registered dataset in storage (layout in the module docstring)."""

    def __init__(self, store: ArtifactStore, name: str):
        check_name(name, "dataset name")
        self.store = store
        self.name = name
        self.prefix = f"datasets/{name}"
        self.cvs_key = f"{self.prefix}/{name}.parquet"
        self.rejected_key = f"{self.prefix}/rejected.parquet"
        self.files_key = f"{self.prefix}/files.parquet"

    @property
    def location(self) -> str:
        """The CV table a keyword run reads."""
        return self.store.location(self.cvs_key)

    def cvs(self) -> pd.DataFrame:
        return self._read(self.cvs_key, DATASET_COLUMNS)

    def rejected(self) -> pd.DataFrame:
        return self._read(self.rejected_key, DATASET_REJECTED_COLUMNS)

    def files(self) -> pd.DataFrame:
        return self._read(self.files_key, FILE_COLUMNS)

    def pending(self, inbox: Inbox) -> list[InboxFile]:
        """Inbox files whose location and content have not been processed before."""
        processed = self.files()
        seen = set(zip(processed["file"], processed["sha256"]))
        last_sha256 = dict(zip(processed["file"], processed["sha256"]))  # later rows win
        pending = []
        for key in inbox.waiting():
            location = redact_url(inbox.store.location(key))
            try:
                digest = inbox.sha256(key)
            except OSError:  # unreadable now: its registration says why, and the other files go on
                digest = ""
            if (location, digest) not in seen:
                pending.append(InboxFile(key, location, digest, last_sha256.get(location)))
        return pending

    def append(self, file: InboxFile, result: IngestResult, ingestion_id: str) -> FileOutcome:
        """Add the file's new CVs and its rejected rows, then record the file; each step atomic, redone on conflict."""
        added: dict = {}

        def add_new_cvs(current: bytes | None) -> bytes | None:
            registered = _table(current, DATASET_COLUMNS)
            known = registered.drop_duplicates("text_hash").set_index("text_hash")
            # CVs that an earlier attempt at this same file appended: they are this file's, not duplicates
            earlier = registered[
                (registered["source_file"] == file.location) & (registered["source_sha256"] == file.sha256)
            ]
            is_new = ~result.cvs["text_hash"].isin(known.index)
            added["earlier"] = int(result.cvs["text_hash"].isin(earlier["text_hash"]).sum())
            added["new"] = result.cvs[is_new].assign(
                source_file=file.location, source_sha256=file.sha256, ingestion_id=ingestion_id
            )
            added["already"] = [
                (row, known.loc[row.text_hash])
                for row in result.cvs[~is_new].itertuples()
                if row.text_hash not in set(earlier["text_hash"])
            ]
            if added["new"].empty:
                return None
            return _parquet(_append(registered, added["new"][DATASET_COLUMNS]))

        self.store.update(self.cvs_key, add_new_cvs)
        already = added["already"]
        rejected = _rejected_rows(result, already).assign(
            ingestion_id=ingestion_id, source_file=file.location, source_sha256=file.sha256
        )
        # a crash before the file is recorded repeats its rows on the retry; keep them once
        self.store.update(
            self.rejected_key,
            lambda current: _parquet(
                _append(_table(current, DATASET_REJECTED_COLUMNS), rejected[DATASET_REJECTED_COLUMNS]).drop_duplicates(
                    ["source_file", "source_sha256", "source_row"]
                )
            ),
        )
        return self.record(
            _outcome(
                file,
                "registered",
                ingestion_id,
                rows=result.input_rows,
                registered=len(added["new"]) + added["earlier"],
                duplicates=result.duplicates + len(already),
                rejected=len(result.rejected) - result.duplicates,
            )
        )

    def record(self, outcome: FileOutcome) -> FileOutcome:
        row = pd.DataFrame([asdict(outcome)])
        self.store.update(self.files_key, lambda current: _parquet(_append(_table(current, FILE_COLUMNS), row)))
        return outcome

    def write_ingestion(self, summary: dict) -> str:
        return self.store.write_json(f"{self.prefix}/ingestions/{summary['ingestion_id']}.json", summary)

    def _read(self, key: str, columns: list[str]) -> pd.DataFrame:
        try:
            return _table(self.store.read_bytes(key), columns)
        except FileNotFoundError:
            return _table(None, columns)


def register_file(
    dataset: RegisteredDataset, inbox: Inbox, file: InboxFile, settings: IngestSettings, ingestion_id: str
) -> FileOutcome:
    """Validate and clean one inbox file with the core pipeline's code and append it; quarantine it if malformed.

    Only an InputError (the file's content is unusable) quarantines: a storage
    fault or a MemoryError fails this file's registration and leaves the file
    in the inbox for the next ingestion.
    """
    # `limit` trims quick keyword runs; a registration keeps every row
    settings = settings.model_copy(update={"limit": None})
    try:
        result = ingest_file(inbox.store.location(file.key), settings, inbox.store.options)
    except InputError as error:
        try:
            moved_to = inbox.move_aside(file.key, str(error), ingestion_id)
        except OSError as move_error:  # recorded either way: a file that cannot be moved must not stop the others
            return dataset.record(
                _outcome(file, "quarantined", ingestion_id, error=f"{error}; not moved: {move_error}")
            )
        return dataset.record(_outcome(file, "quarantined", ingestion_id, error=str(error), moved_to=moved_to))
    file = replace(file, sha256=result.input_sha256)  # the content parsed, should the file have changed since listing
    return dataset.append(file, result, ingestion_id)


def ingestion_summary(
    ingestion_id: str,
    inbox: Inbox,
    dataset: RegisteredDataset,
    outcomes: list[FileOutcome],
    keywords_run_event: dict | None,
) -> dict:
    """What one ingestion did; `keywords_run_event` names the event it emitted for a keyword run, if any."""
    cvs = dataset.cvs()
    return {
        "ingestion_id": ingestion_id,
        "inbox": inbox.location,
        "dataset": dataset.location,
        "files": [asdict(o) for o in outcomes],
        "registered_cvs": sum(o.registered for o in outcomes),
        "quarantined_files": sum(o.status == "quarantined" for o in outcomes),
        "dataset_cvs": len(cvs),
        "dataset_categories": cvs["category"].value_counts().sort_index().to_dict(),
        "keywords_run_event": keywords_run_event,
    }


def ingestion_markdown(summary: dict) -> str:
    """The Markdown record of one ingestion: the dataset's new size, the event it emitted, one row per file."""
    lines = [
        f"# Ingestion {summary['ingestion_id']}",
        "",
        f"Inbox {md(summary['inbox'])} → dataset {md(summary['dataset'])}: "
        f"{summary['registered_cvs']} new CVs, {summary['dataset_cvs']} in total "
        f"({', '.join(f'{md(c)}: {n}' for c, n in summary['dataset_categories'].items()) or 'empty'}).",
        "",
    ]
    if summary["keywords_run_event"]:
        event = summary["keywords_run_event"]
        then = f": `{event['deployment']}` runs on it (its trigger)" if event["deployment"] else ""
        lines += [f"Emitted `{event['event']}` (event `{event['event_id']}`){then}.", ""]
    if not summary["files"]:
        return "\n".join(lines + ["No new or changed files."]) + "\n"
    lines += ["| file | status | rows | new CVs | duplicates | rejected | note |", "|---|---|---|---|---|---|---|"]
    for f in summary["files"]:
        note = f["error"] or (f"changed (was {f['changed_from'][:12]})" if f["changed_from"] else "")
        if f["moved_to"]:
            note += f"; moved to {f['moved_to']}"
        cells = [
            PurePosixPath(f["file"]).name,
            f["status"],
            f["rows"],
            f["registered"],
            f["duplicates"],
            f["rejected"],
            note,
        ]
        lines.append("| " + " | ".join(md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _outcome(file: InboxFile, status: str, ingestion_id: str, **details) -> FileOutcome:
    return FileOutcome(
        file=file.location,
        sha256=file.sha256,
        status=status,
        ingestion_id=ingestion_id,
        processed_at=_now(),
        changed_from=file.changed_from or "",
        **details,
    )


def _rejected_rows(result: IngestResult, already: list[tuple]) -> pd.DataFrame:
    """The file's rejected rows: those ingest rejected, then its CVs that an earlier file registered (`already`:
    (row, the registered CV) pairs), shown with the registered (cleaned) text."""
    registered_before = pd.DataFrame(
        {
            "source_row": [row.source_row for row, _ in already],
            "reason": [_already_registered(row, first) for row, first in already],
            "column": result.text_column,
            "raw_category": [row.category for row, _ in already],
            "raw_text": [row.text for row, _ in already],
        },
        columns=["source_row", "reason", "column", "raw_category", "raw_text"],
    )
    return pd.concat([result.rejected, registered_before])


def _already_registered(row, first) -> str:
    conflict = "" if first.category == row.category else f" with a different label ({first.category!r} kept)"
    return f"already registered from {first.source_file} row {first.source_row}{conflict}"


def _table(data: bytes | None, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns) if data is None else pd.read_parquet(io.BytesIO(data))


def _parquet(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _append(existing: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    # concatenating onto an empty frame would turn typed columns into objects
    return new.reset_index(drop=True) if existing.empty else pd.concat([existing, new], ignore_index=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
