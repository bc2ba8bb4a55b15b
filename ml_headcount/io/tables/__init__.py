"""Table files of every everyday format (CSV, TSV, JSON, JSONL, XLSX, Parquet; gzip, bz2, zip), read in chunks.

One private module per format (`_csv`, `_json`, `_parquet`, `_xlsx`) beside what they share (`_base`), which format a
file is (`_formats`) and the readers callers use (`_reading`). Imported on first use, so importing the package does
no work.
"""

from ml_headcount._exports import exported

__all__, __getattr__ = exported(
    __name__,
    {
        "_base": ["CONTROL", "Chunk", "MalformedRow", "RAW_KEPT", "is_missing"],
        "_columns": ["LABEL_COLUMN_OPTION", "TEXT_COLUMN_OPTION", "column_by_alias", "cv_columns", "find_column"],
        "_reading": ["handle_chunks", "read_table", "table_chunks", "table_headers"],
    },
)
