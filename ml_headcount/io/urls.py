"""Locations of inputs: URLs safe to log (`redact_url`), URLs kept secret from Prefect (`protect`), opening a file
anywhere fsspec reaches with one clear error per way it can fail (`opened`), and the streamed sha256 of its bytes."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import fsspec
from pydantic import SecretStr

from ml_headcount.errors import InputError, UserError


def redact_url(url: str) -> str:
    """The URL without user info (user:password@), query or fragment (presigned signatures): safe to record, log."""
    parts = urlsplit(str(url))
    if len(parts.scheme) <= 1:  # a local path (or a Windows drive letter)
        return str(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def protect(url: str) -> str | SecretStr:
    """A URL to hand to a flow: as it is, or, when it carries credentials (user info, a presigned query), as a
    SecretStr, which Prefect records as '**********' (flow parameters are stored in its database)."""
    return SecretStr(url) if redact_url(url) != url else url


def reveal(url: str | SecretStr) -> str:
    """The URL itself, whether given as it is or `protect`ed."""
    return url.get_secret_value() if isinstance(url, SecretStr) else str(url)


@contextmanager
def opened(url: str, storage_options: dict | None = None) -> Iterator[io.IOBase]:
    """The file at `url`, open for binary reading; every way it cannot be opened is an InputError naming it."""
    name = redact_url(url)
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    try:
        if fs.isdir(path):
            raise InputError(f"{name}: is a directory; give one file (the cv-ingestion flow reads a folder of files)")
        with fs.open(path, "rb") as handle:
            yield handle
    except FileNotFoundError as exc:
        raise InputError(f"{name}: file not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{name}: is a directory; give one file") from exc
    except PermissionError as exc:
        raise InputError(
            f"{name}: access denied ({_redacted(exc, url)}); check the credentials for this location"
        ) from None
    except UserError:
        raise
    except Exception as exc:
        status = getattr(exc, "status", None)  # an HTTP(S) URL's answer (aiohttp's ClientResponseError)
        if isinstance(status, int) and 400 <= status < 500:
            raise InputError(
                f"{name}: the server answered HTTP {status}; check the URL (a presigned one may have "
                "expired) and the credentials"
            ) from None
        if name != url and url in str(exc):  # never let a credential ride out on a traceback
            raise RuntimeError(f"{name}: {type(exc).__name__}: {_redacted(exc, url)}") from None
        raise


def _redacted(error: BaseException, url: str) -> str:
    return str(error).replace(url, redact_url(url))


def stream_sha256(handle, digest=None) -> str:
    """The sha256 of what is left to read in a binary `handle`, read a megabyte at a time; given `digest` (a hashlib
    object), its bytes are added to it and its hex digest returned (one digest over several streams)."""
    digest = digest or hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(url: str, storage_options: dict | None = None) -> str:
    """The sha256 of a file's bytes (what ingest records as `input_sha256`)."""
    with opened(url, storage_options) as handle:
        return stream_sha256(handle)
