"""From a CV table to clean, deduplicated CVs: cleaning rules, text repair, ingest (row accounting) and its two
row tables, the registered dataset, employers.
"""

__all__ = ["cleaning", "dataset", "employers", "ingest", "kept_and_rejected", "text_repair"]
