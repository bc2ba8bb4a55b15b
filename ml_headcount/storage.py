"""Artifacts in a local directory or an S3-compatible bucket, through fsspec.

Writes are atomic: a local file is written under a temporary name and renamed;
an S3 object is one PUT, which S3 makes visible only when complete. So a crash
never leaves a half-written artifact under its final key.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path

import fsspec
import pandas as pd

from ml_headcount.config import StorageSettings
from ml_headcount.errors import UserError


class StorageError(UserError, RuntimeError):
    """Storage that cannot be used (missing bucket, bad credentials, denied access)."""


# botocore's standard mode retries 5xx, throttling and connection errors with exponential backoff and full jitter
S3_RETRIES = {"max_attempts": 8, "mode": "standard"}


def storage_options(url: str, settings: StorageSettings) -> dict:
    """fsspec options for a URL; credentials stay in the environment and never enter these."""
    if not url.startswith("s3://"):
        return {}
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
        self.is_local = "://" not in url or url.startswith("file://")
        if self.is_local:
            url = str(Path(url.removeprefix("file://")).expanduser().resolve())
        self.url = url.rstrip("/")
        self.options = storage_options(self.url, settings)
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.options)

    def verify(self) -> None:
        """Fail fast, naming the URL and what to check, when the storage cannot be used."""
        if self.is_local:
            Path(self.root).mkdir(parents=True, exist_ok=True)
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
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and that they may list and write this bucket"
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
        return f"{self.root.rstrip('/')}/{key}"

    def write_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        if self.is_local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            temporary = f"{path}.tmp-{uuid.uuid4().hex}"
            Path(temporary).write_bytes(data)
            os.replace(temporary, path)
        else:
            self.fs.pipe_file(path, data)
        return self.location(key)

    def read_bytes(self, key: str) -> bytes:
        return self.fs.cat_file(self._path(key))

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
        return sorted(k for k in keys if ".tmp-" not in k)

    def write_text(self, key: str, text: str) -> str:
        return self.write_bytes(key, text.encode("utf-8"))

    def write_json(self, key: str, value) -> str:
        return self.write_text(key, json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")

    def read_json(self, key: str):
        return json.loads(self.read_bytes(key))

    def write_parquet(self, key: str, table: pd.DataFrame) -> str:
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        return self.write_bytes(key, buffer.getvalue())

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read_bytes(key)), columns=columns)

    def write_csv(self, key: str, table: pd.DataFrame) -> str:
        return self.write_text(key, table.to_csv(index=False))

    def read_csv(self, key: str) -> pd.DataFrame:
        return pd.read_csv(io.BytesIO(self.read_bytes(key)), dtype={"category": str}, keep_default_na=False)
