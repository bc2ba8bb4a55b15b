"""Parquet, read a row batch at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_headcount.config import IngestSettings
from ml_headcount.errors import InputError
from ml_headcount.io.tables._base import Chunk, check_columns


def parquet_chunks(stream, name: str, settings: IngestSettings) -> Iterator[Chunk]:
    """The table's rows, `settings.chunk_rows` at a time, numbered from 1; corrupt data is an InputError."""
    try:
        parquet = pq.ParquetFile(stream)
        check_columns(len(parquet.schema_arrow.names), name, settings, "the table has")
        start = 1
        for batch in parquet.iter_batches(batch_size=settings.chunk_rows):
            table = batch.to_pandas()
            table.index = pd.RangeIndex(start, start + len(table))
            table.columns = [str(c) for c in table.columns]
            start += len(table)
            yield Chunk(table)
        if start == 1:
            yield Chunk(pd.DataFrame(columns=[str(c) for c in parquet.schema_arrow.names]))
    except (pa.ArrowInvalid, OSError) as error:
        # corrupt data: ArrowInvalid, or a bare OSError without errno (thrift);
        # storage faults carry an errno or are a subclass
        if not isinstance(error, pa.ArrowInvalid) and (type(error) is not OSError or error.errno is not None):
            raise
        raise InputError(f"{name}: cannot be read as parquet: {error}") from error
