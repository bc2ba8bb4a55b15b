"""How CV tables are read and cleaned."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ml_headcount.config._result_fields import MACHINE_ONLY


class IngestSettings(BaseModel, extra="forbid"):
    text_column: str | None = Field(None, description="Column holding the CV text; None = detect from aliases.")
    label_column: str | None = Field(None, description="Column holding the category; None = detect from aliases.")
    text_aliases: list[str] = [
        "cv_text",
        "profile_summary",
        "profile_text",
        "resume",
        "text",
        "cv",
        "content",
        "summary",
    ]
    label_aliases: list[str] = ["category", "label", "class", "is_ml_expert", "target"]
    lowercase: bool = True
    drop_short_numbers: bool = Field(True, description="The study's rule: drop 1-2 digit numbers.")
    min_text_chars: int = Field(20, description="Cleaned texts shorter than this are rejected.")
    limit: int | None = Field(
        None,
        description="Keep the first N usable rows (quick runs); later rows count as beyond_limit. `apply`: match "
        "the first N rows.",
    )
    max_text_chars: int = Field(
        100_000,
        ge=1,
        description="Rows whose raw text is longer are rejected (not truncated): one huge CV costs minutes of "
        "embedding.",
    )
    max_xlsx_bytes: int = Field(
        256 * 2**20, ge=1, description="An XLSX whose parts uncompress to more than this is refused (zip-bomb guard)."
    )
    max_columns: int = Field(
        1000,
        ge=2,
        description="A table with more columns is refused: every row is padded to the header's width, so "
        "memory follows columns x ingest.chunk_rows.",
    )
    max_whole_file_bytes: int = Field(
        256 * 2**20,
        ge=1,
        description="What must be read whole into memory (a JSON array; Parquet or XLSX inside gzip, "
        "bz2 or zip) is refused above this size once decompressed (bytes; characters for JSON).",
    )
    chunk_rows: int = Field(
        10_000,
        ge=1,
        description="Rows parsed at a time: ingest memory follows this, not the file size.",
        json_schema_extra=MACHINE_ONLY,
    )
    chunk_bytes: int = Field(
        64 * 2**20,
        ge=1,
        description="A chunk also ends at this size (characters of its fields in CSV, TSV and JSONL; uncompressed "
        "bytes in Parquet): chunk_rows rows of long rows would otherwise be held at once.",
        json_schema_extra=MACHINE_ONLY,
    )
    max_row_chars: int = Field(
        2_000_000,
        ge=1,
        description="A CSV/TSV record or JSONL line longer than this, or a Parquet row group whose rows average more "
        "bytes, is rejected as its rows, read no further than this (a compressed file's one 2 GB line is never held "
        "whole).",
    )
