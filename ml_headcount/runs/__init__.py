"""A run's place in storage: its layout and claim, whole-stage caches, and its reports.

What other packages use, by module; imported on first use, so importing the package does no work.
"""

from ml_headcount._exports import exported

__all__, __getattr__ = exported(
    __name__,
    {
        "layout": [
            "EstimateLayout",
            "LATEST",
            "MANIFEST",
            "RunLayout",
            "claim_estimate",
            "claim_run",
            "complete_estimate",
            "complete_run",
            "latest_pointer",
            "new_run_id",
            "run_manifest",
        ],
        "finished": ["finished_run", "resolve_run_id", "run_store", "split_run_reference"],
        "markdown": ["markdown_text"],
        "report": ["new_figure", "plain_text", "png_bytes"],
        "stage_cache": ["StageResult", "cached_stage", "stage_key"],
    },
)
