"""Locations of inputs: URLs safe to log (`redact_url`), URLs kept secret from Prefect (`protect`), opening a file
anywhere fsspec reaches with one clear error per way it can fail (`opened`), and the streamed sha256 of its bytes."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import fsspec
from pydantic import SecretStr

from ml_headcount.errors import InputError, UserError

# what an authority without user info is: a host (or [IPv6]) and an optional port
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]*\]|[^:\[\]]*)(:\d*)?")


def redact_url(url: str) -> str:
    """The URL without user info (user:password@), query or fragment (presigned signatures): safe to record, log."""
    parts = urlsplit(str(url))
    if len(parts.scheme) <= 1:  # a local path (or a Windows drive letter)
        return str(url)
    if "@" not in parts.netloc and not _HOST_PORT.fullmatch(parts.netloc) and "@" in str(url):
        # a password with '/' in it, unescaped (RFC 3986 wants %2F; AWS secret keys hold '/'): the authority seems
        # to end at that '/', so the user info is taken to end at the first '@'
        parts = urlsplit(f"{parts.scheme}://{str(url).split('@', 1)[1]}")
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def refuse_s3_credentials(url: str) -> None:
    """An InputError when an s3:// URL carries credentials (s3://key:secret@bucket/...): S3's come from the
    environment only, and botocore's errors about such a URL print it whole (a bucket name holds no ':' or '@')."""
    bucket = url.removeprefix("s3://").split("/", 1)[0]
    if url.startswith("s3://") and (":" in bucket or "@" in bucket):
        raise InputError(
            f"{redact_url(url)}: credentials in an s3:// URL are refused; give s3://bucket/key and set "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment"
        )


def check_writable(url: str, what: str) -> None:
    """An InputError unless `url` is somewhere artifacts and outputs can be written: a local path or s3:// (fsspec
    opens HTTP(S) and other schemes too, but only to read: a write failed with a traceback)."""
    if "://" in url and not url.startswith(("file://", "s3://")):
        raise InputError(f"{redact_url(url)}: {what} must be a local path or an s3:// URL")


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
