"""From a CV table to clean, deduplicated CVs: cleaning rules, text repair, row accounting, the registered dataset.

What other packages use, by module; imported on first use, so importing the package does no work.
"""

from ml_headcount._exports import exported

__all__, __getattr__ = exported(
    __name__,
    {
        "dataset": [
            "FileOutcome",
            "Inbox",
            "InboxFile",
            "RegisteredDataset",
            "ingestion_markdown",
            "ingestion_summary",
            "register_file",
        ],
        "ingest": [
            "CV_SCHEMA",
            "Chunk",
            "InputError",
            "REJECTED_COLUMNS",
            "_opened",
            "clean_text",
            "clean_text_problem",
            "find_column",
            "ingest",
            "ingest_table",
            "input_sha256",
            "normalise_labels",
            "protect",
            "raw_text_problem",
            "read_table",
            "redact_url",
            "reveal",
            "stream_sha256",
            "table_chunks",
            "text_hash",
        ],
    },
)
