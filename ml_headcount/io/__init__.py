"""Where bytes live and how tables are read: the artifact store (local or S3), streamed table readers, URLs, worker processes.

What other packages use, by module; imported on first use, so importing the package does no work.
"""

from ml_headcount._exports import exported

__all__, __getattr__ = exported(
    __name__,
    {
        "parallel": ["ordered_map"],
        "storage": [
            "ArtifactStore",
            "StorageError",
            "StorageSettings",
            "TooLargeError",
            "check_name",
            "openable",
            "storage_options",
        ],
    },
)
