"""Table files of every everyday format (CSV, TSV, JSON, JSONL, XLSX, Parquet; gzip, bz2, zip), read in chunks.

One private module per format (`_csv`, `_json`, `_parquet`, `_xlsx`) beside what they share (`_base`), which format a
file is (`_formats`) and the readers callers use (`_reading`).
"""

from ml_headcount.io.tables._base import CONTROL, RAW_KEPT, Chunk, MalformedRow, is_missing
from ml_headcount.io.tables._columns import (
    LABEL_COLUMN_OPTION,
    TEXT_COLUMN_OPTION,
    column_by_alias,
    cv_columns,
    find_column,
)
from ml_headcount.io.tables._reading import handle_chunks, read_table, table_chunks, table_headers

__all__ = [
    "CONTROL",
    "LABEL_COLUMN_OPTION",
    "RAW_KEPT",
    "TEXT_COLUMN_OPTION",
    "Chunk",
    "MalformedRow",
    "column_by_alias",
    "cv_columns",
    "find_column",
    "handle_chunks",
    "is_missing",
    "read_table",
    "table_chunks",
    "table_headers",
]
