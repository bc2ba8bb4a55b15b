"""From a CV table to clean, deduplicated CVs: cleaning rules, text repair, ingest (row accounting) and its two
row tables, the registered dataset, employers.

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
        "cleaning": [
            "clean_text",
            "clean_text_problem",
            "cv_id",
            "normalise_labels",
            "raw_text_problem",
            "same_label",
            "text_hash",
        ],
        "ingest": ["IngestResult", "ingest", "ingest_file", "ingest_table"],
        "row_tables": ["CV_COLUMNS", "CV_SCHEMA", "KeptCvs", "REJECTED_COLUMNS", "REJECTED_SCHEMA", "RejectedRows"],
    },
)
