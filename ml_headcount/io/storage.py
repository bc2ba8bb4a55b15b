"""Artifacts in a local directory or an S3-compatible bucket, through fsspec.

Writes are atomic: a local file is written under a temporary name and renamed;
an S3 object is one PUT (or one multipart upload for a streamed write), which
S3 makes visible only when complete. So a crash never leaves a half-written
artifact under its final key. Large tables are written and read as streams
of Parquet batches (`write_parquet_batches`, `parquet_batches`), so neither
side holds a whole table.

Two writers that must not both win (claims, the dataset tables, the latest-run
pointer) use `create_if_absent` or `update`: locally an exclusive link or a
file lock (`filelock`: Linux, macOS and Windows), on S3 a conditional PUT
(`If-None-Match: *` / `If-Match: <etag>`, supported by AWS S3, MinIO and R2).
Keys are exact: no call here expands `*`, `?` or `[`, so an object named
`*.csv` is that one object.
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import fsspec
from filelock import FileLock

from ml_headcount.config import StorageSettings
from ml_headcount.errors import InputError, UserError
from ml_headcount.io.local_files import TEMPORARY_MARK, atomic_path, temporary_beside
from ml_headcount.io.urls import check_writable, redact_url, refuse_s3_credentials, stream_sha256

if TYPE_CHECKING:  # the table methods import pandas and pyarrow where they run: a command that stops at a user
    # error (a run that is not there) answers before importing them, in well under a second instead of ~2.5 s
    import pandas as pd
    import pyarrow as pa


class StorageError(UserError, RuntimeError):
    """Storage that cannot be used (missing bucket, bad credentials, denied access)."""


class TooLargeError(ValueError):
    """An object larger than its reader allows (`ArtifactStore.read_bounded`): not read."""


# one path segment of a key: no separators, no '.'/'..', nothing a shell or a glob would read differently
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CAS_ATTEMPTS = 64


def check_name(name: str, what: str) -> str:
    """`name` if it is safe as one segment of a storage key (run ids, dataset names), else an InputError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    return name


# botocore's standard mode retries 5xx, throttling and connection errors with exponential backoff and full jitter
S3_RETRIES = {"max_attempts": 8, "mode": "standard"}


def storage_options(url: str, settings: StorageSettings) -> dict:
    """fsspec options for a URL; credentials stay in the environment (never in these, nor in the URL)."""
    if not url.startswith("s3://"):
        return {}
    refuse_s3_credentials(url)
    client_kwargs = {}
    endpoint = settings.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    if settings.region:
        client_kwargs["region_name"] = settings.region
    return {"client_kwargs": client_kwargs, "config_kwargs": {"retries": S3_RETRIES}}


class ArtifactStore:
    """A root URL and the files below it, addressed by '/'-separated keys."""

    def __init__(self, settings: StorageSettings):
        url = settings.url
        check_writable(url, "the storage")
        self.is_local = "://" not in url or url.startswith("file://")
        if self.is_local:
            url = str(Path(url.removeprefix("file://")).expanduser().resolve())
        url = url.rstrip("/")
        self.options = storage_options(url, settings)
        self.fs, self.root = fsspec.core.url_to_fs(url, **self.options)
        self.url = redact_url(url)  # what locations and messages show: never user info or a query

    def verify(self) -> None:
        """Fail fast, naming the URL and what to check, when the storage cannot be used."""
        if self.is_local:
            try:
                Path(self.root).mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageError(f"{self.url}: cannot create the directory ({error.strerror})") from None
            if not os.access(self.root, os.W_OK):
                raise StorageError(f"{self.url}: directory is not writable")
            return
        bucket = self.root.split("/", 1)[0]
        endpoint = self.options.get("client_kwargs", {}).get("endpoint_url", "the default AWS endpoint")
        try:
            self.fs.ls(bucket, refresh=True)
        except FileNotFoundError as error:
            raise StorageError(
                f"{self.url}: bucket {bucket!r} does not exist at {endpoint}; create it, or check the bucket name "
                "and the endpoint (storage.endpoint_url or AWS_ENDPOINT_URL)"
            ) from error
        except PermissionError as error:
            raise StorageError(
                f"{self.url}: access denied at {endpoint} ({error}); check the credentials "
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and that they may list and write this "
                "bucket"
            ) from error
        except Exception as error:
            if type(error).__name__ != "NoCredentialsError":
                raise
            raise StorageError(
                f"{self.url}: no S3 credentials found; set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
            ) from error

    def location(self, key: str) -> str:
        """The URL (or local path) a user can open."""
        return f"{self.url}/{key}" if key else self.url

    def _path(self, key: str) -> str:
        """The key's path; locally a StorageError when a symbolic link inside the store leads it out (`runs/x ->
        /elsewhere` would redirect a run's writes: the product never writes or reads outside its store)."""
        path = f"{self.root.rstrip('/')}/{key}"
        if self.is_local and not (real := Path(path).resolve()).is_relative_to(self.root):
            raise StorageError(f"{self.location(key)}: a symbolic link in the store leads out of it, to {real}")
        return path

    def write_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        if self.is_local:
            with atomic_path(path) as temporary:
                Path(temporary).write_bytes(data)
        else:
            self.fs.pipe_file(path, data)
        return self.location(key)

    def create_if_absent(self, key: str, data: bytes) -> bool:
        """Write `data` under `key` unless the key exists; True when this call created it. Atomic across machines."""
        path = self._path(key)
        if self.is_local:
            temporary = temporary_beside(path)
            Path(temporary).write_bytes(data)
            try:
                os.link(temporary, path)  # fails if the name exists; readers never see a partial file
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(temporary)
        try:
            self.fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            # a PUT that botocore retried after a lost response may find its own first attempt
            return self._read_or_none(key) == data

    def update(self, key: str, change: Callable[[bytes | None], bytes | None]) -> bytes | None:
        """Atomic read-modify-write: `change(current)` (None = absent) returns the new bytes, or None to leave it.

        Locally under a lock file; on S3 a PUT conditional on the ETag read, redone
        with the newer content when another writer got there first. Returns what
        the key holds afterwards.
        """
        if self.is_local:
            path = Path(self._path(key))
            path.parent.mkdir(parents=True, exist_ok=True)
            # flock on Linux and macOS, LockFileEx on Windows: released by the system if this process dies
            with FileLock(path.parent / f".{path.name}.lock"):
                current = path.read_bytes() if path.exists() else None
                new = change(current)
                if new is None:
                    return current
                self.write_bytes(key, new)
                return new
        bucket, _, object_key = self._path(key).partition("/")
        for attempt in range(_CAS_ATTEMPTS):
            current, etag = self._read_with_etag(key)
            new = change(current)
            if new is None:
                return current
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.fs.call_s3("put_object", Bucket=bucket, Key=object_key, Body=new, **condition)
                self.fs.invalidate_cache(self._path(key))
                return new
            except OSError as error:
                if not _is_conflict(error):
                    raise
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # full jitter: contenders spread out
        raise StorageError(f"{self.location(key)}: still changing after {_CAS_ATTEMPTS} attempts to update it")

    def _read_with_etag(self, key: str) -> tuple[bytes | None, str | None]:
        path = self._path(key)
        self.fs.invalidate_cache(path)
        try:
            etag = self.fs.info(path)["ETag"]
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            return None, None
        # should the object change between the two calls, the conditional PUT on the older ETag fails and we redo
        return data, etag

    def _read_or_none(self, key: str) -> bytes | None:
        try:
            return self.read_bytes(key)
        except FileNotFoundError:
            return None

    def move(self, key: str, target: str) -> str:
        """Move one object or file to another key, both taken literally (no glob expansion)."""
        source, destination = self._path(key), self._path(target)
        if self.is_local:
            Path(destination).parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, destination)
        else:
            self.fs.cp_file(source, destination)  # one exact key each; fs.mv/fs.rm would expand glob characters
            self.fs.rm_file(source)
        return self.location(target)

    def copy(self, key: str, target: str) -> str:
        """Copy one object or file to another key (atomically, like every write), both taken literally."""
        source, destination = self._path(key), self._path(target)
        if self.is_local:
            with atomic_path(destination) as temporary:
                shutil.copyfile(source, temporary)
        else:
            self.fs.cp_file(source, destination)  # server-side copy, visible when complete
        return self.location(target)

    @contextmanager
    def writer(self, key: str) -> Iterator[io.IOBase]:
        """A binary file to stream into `key`; the key appears only if the block completes."""
        path = self._path(key)
        if self.is_local:
            with atomic_path(path) as temporary, open(temporary, "wb") as handle:
                yield handle
            return
        handle = self.fs.open(path, "wb")
        try:
            yield handle
        except BaseException:
            handle.discard()  # abort the multipart upload: nothing appears under the key
            handle.closed = True  # and nothing is flushed when the handle is collected
            raise
        handle.close()

    def write_parquet_batches(self, key: str, batches: Iterable[pd.DataFrame], schema: pa.Schema | None = None) -> int:
        """A Parquet table written batch by batch (one row group or more each); returns its row count."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows, writer = 0, None
        with self.writer(key) as handle:
            try:
                for batch in batches:
                    table = pa.Table.from_pandas(batch, schema=schema, preserve_index=False)
                    writer = writer or pq.ParquetWriter(handle, schema or table.schema)
                    writer.write_table(table)
                    rows += table.num_rows
                writer = writer or pq.ParquetWriter(handle, schema or pa.schema([]))  # no batch: an empty table
            finally:
                if writer is not None:  # also on failure: the file it ends is then thrown away
                    writer.close()
        return rows

    def parquet_batches(self, key: str, columns: list[str] | None = None, rows: int = 20_000) -> Iterator[pd.DataFrame]:
        """A Parquet table read `rows` at a time."""
        import pyarrow.parquet as pq

        with self.fs.open(self._path(key), "rb") as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=rows, columns=columns):
                yield batch.to_pandas()

    def sha256(self, key: str) -> str:
        """The sha256 of an artifact's bytes, read as a stream."""
        with self.fs.open(self._path(key), "rb") as handle:
            return stream_sha256(handle)

    def read_bytes(self, key: str) -> bytes:
        return self.fs.cat_file(self._path(key))

    def read_bounded(self, key: str, max_bytes: int) -> bytes:
        """The object's bytes if it holds at most `max_bytes` (TooLargeError otherwise: no more than that is read)."""
        with self.fs.open(self._path(key), "rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise TooLargeError(f"{self.location(key)}: larger than {max_bytes:,} bytes, not read")
        return data

    def list_sizes(self, prefix: str) -> dict[str, int]:
        """Keys of the files directly below a prefix and their sizes in bytes, by key; empty when there are none."""
        try:
            entries = self.fs.ls(self._path(prefix), detail=True, refresh=True)
        except FileNotFoundError:
            return {}
        base = self.root.rstrip("/") + "/"
        sizes = {}
        for entry in entries:
            if entry.get("type") == "directory":
                continue
            name = entry["name"]
            key = name.removeprefix(base) if name.startswith(base) else name
            if TEMPORARY_MARK not in key:
                sizes[key] = int(entry.get("size") or 0)
        return dict(sorted(sizes.items()))

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._path(key))

    def list(self, prefix: str) -> list[str]:
        """Keys of the files directly below a prefix, sorted; empty when there are none."""
        try:
            entries = self.fs.ls(self._path(prefix), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        base = self.root.rstrip("/") + "/"
        keys = [e.removeprefix(base) if e.startswith(base) else e for e in entries]
        return sorted(k for k in keys if TEMPORARY_MARK not in k)

    def write_text(self, key: str, text: str) -> str:
        return self.write_bytes(key, text.encode("utf-8"))

    def write_json(self, key: str, value) -> str:
        return self.write_text(key, json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")

    def read_json(self, key: str, max_bytes: int = 16 * 2**20):
        """A small JSON document (a summary, a pointer); a run's artifacts are read by `io.artifacts.read_artifact`."""
        return json.loads(self.read_bounded(key, max_bytes))

    def write_parquet(self, key: str, table: pd.DataFrame) -> str:
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        return self.write_bytes(key, buffer.getvalue())

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A Parquet table; with `columns`, only their column chunks are read (ranged reads on S3), not the file."""
        import pandas as pd

        with self.fs.open(self._path(key), "rb") as handle:
            return pd.read_parquet(handle, columns=columns)

    def write_csv(self, key: str, table: pd.DataFrame) -> str:
        """A CSV that spreadsheets open as text (see `escape_cell`; `read_csv` undoes it exactly), RFC 4180 line ends
        (CRLF, so a cell holding a lone CR is quoted)."""
        from ml_headcount.io.cell_escaping import escaped

        return self.write_text(key, escaped(table).to_csv(index=False, lineterminator="\r\n"))

    def write_csv_batches(self, key: str, batches: Iterable[pd.DataFrame], columns: list[str]) -> str:
        """`write_csv` of the batches' concatenation, streamed: the same bytes, one batch in memory at a time."""
        import pandas as pd

        from ml_headcount.io.cell_escaping import escaped

        with self.writer(key) as handle:
            header = True
            for batch in batches:
                handle.write(escaped(batch).to_csv(index=False, header=header, lineterminator="\r\n").encode("utf-8"))
                header = False
            if header:
                handle.write(pd.DataFrame(columns=columns).to_csv(index=False, lineterminator="\r\n").encode("utf-8"))
        return self.location(key)

    def read_csv(self, key: str) -> pd.DataFrame:
        import pandas as pd

        from ml_headcount.io.cell_escaping import unescaped

        table = pd.read_csv(io.BytesIO(self.read_bytes(key)), dtype={"category": str}, keep_default_na=False)
        return unescaped(table)


def _is_conflict(error: OSError) -> bool:
    """A conditional PUT that lost: 412 Precondition Failed (s3fs: FileExistsError / EINVAL) or 409
    ConditionalRequestConflict."""
    return (
        isinstance(error, FileExistsError) or error.errno == errno.EINVAL or "ConditionalRequestConflict" in str(error)
    )
