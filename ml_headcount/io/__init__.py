"""Where bytes live and how they are read: the artifact store (local or S3), input URLs, worker processes; table
readers are the `tables` subpackage.
"""

__all__ = ["artifacts", "cell_escaping", "local_files", "parallel", "storage", "urls", "tables"]
