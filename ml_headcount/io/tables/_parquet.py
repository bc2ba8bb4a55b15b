"""Parquet, read a row batch at a time, each batch bounded in rows and in bytes."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.tables._base import Chunk, MalformedRow, check_columns, distinct_names


def parquet_chunks(stream, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """The table's rows, `settings.chunk_rows` (or `chunk_bytes`) at a time, numbered from 1; corrupt data is an
    InputError."""
    try:
        parquet = pq.ParquetFile(stream)
        columns = [str(c) for c in parquet.schema_arrow.names]
        check_columns(len(columns), name, settings, "the table has")
        distinct_names(columns, name)
        start = 1
        for group in range(parquet.num_row_groups):
            yield from _row_group_chunks(parquet, group, start, columns, settings)
            start += parquet.metadata.row_group(group).num_rows
        if start == 1:
            yield Chunk(pd.DataFrame(columns=columns))
    except (pa.ArrowInvalid, OSError) as error:
        # corrupt data: ArrowInvalid, or a bare OSError without errno (thrift);
        # storage faults carry an errno or are a subclass
        if not isinstance(error, pa.ArrowInvalid) and (type(error) is not OSError or error.errno is not None):
            raise
        raise InputError(f"{name}: cannot be read as parquet: {error}") from error


def _row_group_chunks(
    parquet: pq.ParquetFile, group: int, start: int, columns: list[str], settings: IngestSettings
) -> Iterator[Chunk]:
    """One row group's rows, from source row `start`, in batches of at most `chunk_bytes` uncompressed (by the row
    group's average row). A row group whose rows average over ingest.max_row_chars bytes is not read at all: a
    Parquet page is decompressed whole, so one 1 GiB cell in a 33 KB file would be held whole; its rows are rejected."""
    rows, size = parquet.metadata.row_group(group).num_rows, parquet.metadata.row_group(group).total_byte_size
    if rows and size > rows * settings.max_row_chars:
        reason = (
            f"in a Parquet row group of {rows:,} rows and {size:,} bytes uncompressed, over "
            f"ingest.max_row_chars ({settings.max_row_chars:,}) a row: not read"
        )
        for first in range(start, start + rows, settings.chunk_rows):
            unread = range(first, min(first + settings.chunk_rows, start + rows))
            yield Chunk(pd.DataFrame(columns=columns), [MalformedRow(row, reason, "") for row in unread])
        return
    batch_rows = max(1, min(settings.chunk_rows, settings.chunk_bytes * rows // max(size, 1)))
    for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=[group]):
        table = batch.to_pandas()
        table.index = pd.RangeIndex(start, start + len(table))
        table.columns = [str(c) for c in table.columns]
        start += len(table)
        yield Chunk(table)
