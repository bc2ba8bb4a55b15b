"""Keyword lists: learned with cross-validated quality, written as search queries, applied to any table.

What other packages use, by module; imported on first use, so importing the package does no work.
"""

from ml_headcount._exports import exported

__all__, __getattr__ = exported(
    __name__,
    {
        "apply": ["apply_run_lists", "default_output"],
        "eligibility": ["organisation_name_share"],
        "evidence": ["Corpus", "KeywordEvidence", "build_corpus", "corpus_evidence"],
        "folds": ["stratified_folds", "stratified_sample"],
        "greedy": ["greedy_path", "grow_list"],
        "learners": ["LIST_NAMES", "learn", "study_lists"],
        "learning": ["score_and_learn_lists"],
        "quality": ["MATCHERS", "cross_validate", "phrase_list_matches"],
        "queries": ["list_query"],
        "run_lists": ["RunLists", "load_run_lists", "run_query"],
        "text_classifier": ["TextClassifier"],
    },
)
