"""Which reader a file needs: its container (gzip, bz2, zip), its format (by suffix or by content) and encoding."""

from __future__ import annotations

import bz2
import codecs
import functools
import gzip
import io
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.tables._base import CONTROL, Chunk, Malformed
from ml_headcount.io.tables._csv import csv_chunks, sniffed_delimiter
from ml_headcount.io.tables._json import json_array_chunks, jsonl_chunks
from ml_headcount.io.tables._parquet import parquet_chunks
from ml_headcount.io.tables._xlsx import xlsx_chunks

_SAMPLE_BYTES = 1 << 16  # enough to see the header, the delimiter and the encoding

_SUFFIX_KINDS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def file_chunks(handle, url: str, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """The file's rows, whatever the container (gzip, bz2, zip) and format."""
    path = PurePosixPath(urlsplit(url).path if "://" in url else url)
    magic = handle.read(8)
    handle.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        yield from _format_chunks(
            io.BufferedReader(_Decompressing(gzip.GzipFile(fileobj=handle))), path.stem, name, settings
        )
    elif magic.startswith(b"BZh"):
        yield from _format_chunks(io.BufferedReader(_Decompressing(bz2.BZ2File(handle))), path.stem, name, settings)
    elif magic.startswith(b"PK\x03\x04") and _kind_by_name(path.name) != "xlsx":
        archive = zipfile.ZipFile(handle)
        if "xl/workbook.xml" in archive.namelist():
            yield from xlsx_chunks(handle, name, settings)
            return
        members = [
            m
            for m in archive.infolist()
            if not m.is_dir()
            and not PurePosixPath(m.filename).name.startswith(".")
            and not m.filename.startswith("__MACOSX/")
        ]
        if len(members) != 1:
            raise InputError(
                f"{name}: a zip archive must hold exactly one table; it holds {[m.filename for m in members]}"
            )
        with archive.open(members[0]) as member:
            yield from _format_chunks(io.BufferedReader(_Decompressing(member)), members[0].filename, name, settings)
    else:
        yield from _format_chunks(handle, path.name, name, settings)


def _format_chunks(stream, inner_name: str, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """The rows of one uncompressed stream, its format known by `inner_name`'s suffix or by its first bytes."""
    head = stream.read(_SAMPLE_BYTES)
    if not head:
        raise InputError(f"{name}: is empty (no header and no rows)")
    if stream.seekable():
        stream.seek(0)
    else:
        stream = io.BufferedReader(_Rejoined(head, stream), buffer_size=1 << 20)
    kind = _kind_by_name(inner_name) or _kind_by_content(head)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError(f"{name}: is an Excel 97-2003 (.xls) or other OLE file; save it as .xlsx or CSV")
    if kind == "parquet" or head.startswith(b"PAR1"):
        yield from parquet_chunks(
            stream if stream.seekable() else _read_whole(stream, "Parquet", name, settings), name, settings
        )
        return
    if kind == "xlsx" or head.startswith(b"PK\x03\x04"):
        yield from xlsx_chunks(
            stream if stream.seekable() else _read_whole(stream, "XLSX", name, settings), name, settings
        )
        return
    encoding = _encoding(head, name)
    # a UTF-8 file with cp1252 bytes further on (two exports pasted together) keeps those characters too
    errors = _cp1252_fallback() if encoding == "utf-8" else "replace"
    text = io.TextIOWrapper(stream, encoding=encoding, errors=errors, newline="")
    from_cp1252 = encoding == "cp1252"
    if kind in ("json", "jsonl"):
        first = head.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")[:1]
        chunks = json_array_chunks(text, name, settings) if first == "[" else jsonl_chunks(text, name, settings)
    else:
        chunks = csv_chunks(
            text, "\t" if kind == "tsv" else sniffed_delimiter(head.decode(encoding, errors="replace")), name, settings
        )
    for chunk in chunks:
        chunk.from_cp1252 = from_cp1252
        yield chunk


def _read_whole(stream, what: str, name: str, settings: IngestSettings) -> io.BytesIO:
    """A compressed Parquet or XLSX, decompressed into memory (both need to seek), at most
    ingest.max_whole_file_bytes."""
    cap = settings.max_whole_file_bytes
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise InputError(
            f"{name}: the {what} inside decompresses to more than {cap:,} bytes (ingest.max_whole_file_bytes), "
            f"which would be read into memory whole; give the {what} file uncompressed, or raise the setting"
        )
    return io.BytesIO(data)


def _decode_as_cp1252(error: UnicodeDecodeError) -> tuple[str, int]:
    return error.object[error.start : error.end].decode("cp1252", errors="replace"), error.end


@functools.cache
def _cp1252_fallback() -> str:
    """The name of a decoding error handler that reads undecodable bytes as cp1252, registered on first use (codecs
    keeps error handlers process-wide, so it is registered once, and only by a process that reads such a file)."""
    codecs.register_error("ml-headcount-cp1252-fallback", _decode_as_cp1252)
    return "ml-headcount-cp1252-fallback"


def _kind_by_name(name: str) -> str:
    return _SUFFIX_KINDS.get(PurePosixPath(name).suffix.lower(), "")


def _kind_by_content(head: bytes) -> str:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if start in (b"{", b"[") else "csv"


def _encoding(head: bytes, name: str) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252 (Windows' 'ANSI', which Excel writes)."""
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a cut last character is fine
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"
    sample = head.decode(encoding, errors="replace")
    controls = len(CONTROL.findall(sample)) + sample.count("\ufffd")
    if controls > 0.05 * len(sample):
        raise InputError(f"{name}: binary content, not a CSV, TSV, JSON, JSONL, XLSX or Parquet table")
    return encoding


class _Rejoined(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff the format), made whole again."""

    def __init__(self, head: bytes, rest):
        self._head, self._rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head.nbytes:
            n = min(len(buffer), self._head.nbytes)
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Decompressing(io.RawIOBase):
    """A decompressing stream whose corrupt-data errors are parser errors, not storage errors."""

    def __init__(self, inner):
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self._inner.readinto(buffer)
        except (gzip.BadGzipFile, EOFError, zlib.error, zipfile.BadZipFile) as error:
            raise Malformed(f"corrupt compressed data ({error})") from error
        except OSError as error:
            if "Invalid data stream" in str(error):  # bz2
                raise Malformed(f"corrupt compressed data ({error})") from error
            raise
