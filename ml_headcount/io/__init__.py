"""Where bytes live and how they are read: the artifact store (local or S3), input URLs, worker processes; table
readers are the `tables` subpackage.

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
            "storage_options",
        ],
        "urls": ["check_writable", "file_sha256", "opened", "protect", "redact_url", "reveal", "stream_sha256"],
    },
)
