"""The one typed settings object, `Settings`, and its sections, one module per part of the pipeline.

`_settings` holds `Settings` itself and how it is loaded (defaults < config file < environment < options); each
other module holds the sections of one part.
"""

from ml_headcount.config._extraction import (
    DEFAULT_MODEL,
    ExtractionSettings,
    canonical_model_name,
)
from ml_headcount.config._headcount import HeadcountSettings
from ml_headcount.config._infrastructure import InboxSettings, ModalSettings, StorageSettings
from ml_headcount.config._ingest import IngestSettings
from ml_headcount.config._keywords import ClusteringSettings, DesignOptimism, ListSettings, ScoringSettings
from ml_headcount.config._report import ReportSettings
from ml_headcount.config._result_fields import MACHINE_ONLY, machine_only_fields, result_fields
from ml_headcount.config._settings import Settings, SettingsError, available_cpus, load_settings

__all__ = [
    "DEFAULT_MODEL",
    "MACHINE_ONLY",
    "ClusteringSettings",
    "DesignOptimism",
    "ExtractionSettings",
    "HeadcountSettings",
    "InboxSettings",
    "IngestSettings",
    "ListSettings",
    "ModalSettings",
    "ReportSettings",
    "ScoringSettings",
    "Settings",
    "SettingsError",
    "StorageSettings",
    "available_cpus",
    "canonical_model_name",
    "load_settings",
    "machine_only_fields",
    "result_fields",
]
