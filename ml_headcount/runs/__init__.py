"""A run's place in storage: its layout and claim, whole-stage caches, and its reports."""

__all__ = ["document", "finished", "layout", "listing", "markdown", "report", "run_document", "stage_cache", "summary"]
