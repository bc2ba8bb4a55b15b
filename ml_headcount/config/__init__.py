"""The one typed settings object, `Settings`, and its sections, one module per part of the pipeline.

`_settings` holds `Settings` itself and how it is loaded (defaults < config file < environment < options); each
other module holds the sections of one part. Imported on first use, so importing the package does no work.
"""

from ml_headcount._exports import exported

__all__, __getattr__ = exported(
    __name__,
    {
        "_extraction": [
            "DEFAULT_MODEL",
            "EXTRACTION_VERSION",
            "FAST_MODE_VERSION",
            "MACHINE_ONLY_EXTRACTION_FIELDS",
            "ExtractionSettings",
            "canonical_model_name",
        ],
        "_headcount": ["HeadcountSettings"],
        "_infrastructure": ["InboxSettings", "ModalSettings", "StorageSettings"],
        "_ingest": ["IngestSettings"],
        "_keywords": ["ClusteringSettings", "DesignOptimism", "ListSettings", "ScoringSettings"],
        "_report": ["ReportSettings"],
        "_settings": ["Settings", "SettingsError", "available_cpus", "load_settings"],
    },
)
