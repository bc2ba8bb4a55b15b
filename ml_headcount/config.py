"""The one typed settings object.

Defaults are the study's parameters (README.md, "How keywords are scored"). Values come, lowest
priority first, from these defaults, a YAML/TOML/JSON file, environment
variables (`ML_HEADCOUNT_<SECTION>__<FIELD>`, e.g.
`ML_HEADCOUNT_EXTRACTION__TOP_N=10`) and explicit keyword arguments. The same
object is the `cv-keywords` flow's parameter, so the Prefect UI shows and edits
it. It never holds credentials: those come from the standard AWS / Modal
environment only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml_headcount.errors import UserError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Part of every extraction cache key: bump when the same settings would give other keywords, or the cache's format
# changes. 3: entries record their Parquet's sha256; keys hold local models' weight digests.
EXTRACTION_VERSION = "3"
# Part of fast mode's cache keys only, so that changing fast mode leaves exact mode's caches valid.
# 2: static vectors of the model's tokens for every candidate (1 embedded near-picks with the transformer).
FAST_MODE_VERSION = "2"


def canonical_model_name(name: str) -> str:
    """One name per model everywhere (settings, cache keys, image build, container load).

    The packaged default stays as it is; a bare hub name is the
    sentence-transformers organisation's, as sentence-transformers itself
    resolves it; an owner/name or a local path is kept.
    """
    if name == DEFAULT_MODEL or "/" in name or Path(name).expanduser().exists():
        return name
    return f"sentence-transformers/{name}"


class IngestSettings(BaseModel, extra="forbid"):
    text_column: str | None = Field(None, description="Column holding the CV text; None = detect from aliases.")
    label_column: str | None = Field(None, description="Column holding the category; None = detect from aliases.")
    text_aliases: list[str] = [
        "cv_text",
        "profile_summary",
        "profile_text",
        "resume",
        "text",
        "cv",
        "content",
        "summary",
    ]
    label_aliases: list[str] = ["category", "label", "class", "is_ml_expert", "target"]
    lowercase: bool = True
    drop_short_numbers: bool = Field(True, description="The study's rule: drop 1-2 digit numbers.")
    min_text_chars: int = Field(20, description="Cleaned texts shorter than this are rejected.")
    limit: int | None = Field(
        None, description="Keep the first N usable rows (quick runs); later rows count as beyond_limit."
    )
    max_text_chars: int = Field(
        100_000,
        ge=1,
        description="Rows whose raw text is longer are rejected (not truncated): one huge CV costs minutes of embedding.",
    )
    max_xlsx_bytes: int = Field(
        256 * 2**20, ge=1, description="An XLSX whose parts uncompress to more than this is refused (zip-bomb guard)."
    )
    max_columns: int = Field(
        1000,
        ge=2,
        description="A table with more columns is refused: every row is padded to the header's width, so "
        "memory follows columns x ingest.chunk_rows.",
    )
    max_whole_file_bytes: int = Field(
        256 * 2**20,
        ge=1,
        description="What must be read whole into memory (a JSON array; Parquet or XLSX inside gzip, "
        "bz2 or zip) is refused above this size once decompressed (bytes; characters for JSON).",
    )
    chunk_rows: int = Field(
        10_000, ge=1, description="Rows parsed at a time: ingest memory follows this, not the file size."
    )


class ExtractionSettings(BaseModel, extra="forbid"):
    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model: the packaged default, owner/name on the hub, or a local path; "
        "a bare hub name means sentence-transformers/<name>.",
    )
    top_n: int = 30
    ngram_min: int = 1
    ngram_max: int = 4
    use_mmr: bool = True
    diversity: float = 0.5
    stop_words: Literal["study", "english", "none"] = "study"
    extra_stop_words: list[str] = []
    max_seq_length: int = 256
    shard_size: int = Field(32, description="CVs per extraction call (and per Modal container call).")
    device: str | None = Field(
        None,
        description="Local backend only: torch device; None = cuda if available else cpu. Modal containers use their GPU.",
    )
    precision: Literal["float32", "float16"] = Field(
        "float32",
        description="Precision of the embeddings that decide keywords. float16 (GPU only) is for models whose float32 "
        "weights do not fit the GPU (e.g. 7B models); exact mode then matches KeyBERT on the same float16 model.",
    )
    max_cpu_weights_gb: float = Field(
        2.0, description="A model whose weights exceed this is refused on CPU up front: it would run for hours."
    )
    mode: Literal["exact", "fast"] = Field(
        "exact",
        description="exact: KeyBERT's keywords (docs/performance.md); fast: KeyBERT's MMR on static vectors of the "
        "candidates (the model's token vectors, averaged) against the transformer's CV vectors: other per-CV keywords, "
        "keyword lists of about the same cross-validated quality, >= 20x the study's loop on CPU.",
    )
    screen_margin: float = Field(
        0.0075,
        description="exact mode: assumed bound on a reduced-precision similarity's error (measured max 0.0021 with "
        "OpenVINO, 0.0044 with PyTorch: benchmarks/screening_error.py); candidates within it of a pick are re-embedded "
        "in the deciding precision. Each shard measures the error on what it re-embeds and decides again without "
        "screening where it exceeds this.",
    )
    inference_backend: Literal["auto", "openvino", "torch"] = Field(
        "auto", description="CPU only: auto = OpenVINO where installed, else PyTorch. GPUs always run PyTorch."
    )
    cpu_threads: int | None = Field(
        None,
        ge=1,
        description="CPU only: inference threads of the one extraction process (None = every CPU it may run on). "
        "Measured on 2 cores: one process with 2 threads beats 2 single-thread processes (docs/scale.md).",
    )
    embedding_cache_size: int = Field(
        200_000, description="Phrase embeddings kept in memory across shards, per precision."
    )
    model_cache_dir: str | None = Field(
        None, description="Where converted models are kept; None = ~/.cache/ml-headcount."
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> ExtractionSettings:
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ValueError("need 1 <= ngram_min <= ngram_max")
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError("diversity must be in [0, 1]")
        if self.top_n < 1 or self.shard_size < 1:
            raise ValueError("top_n and shard_size must be positive")
        if self.screen_margin < 0:
            raise ValueError("screen_margin must be >= 0")
        return self

    @field_validator("model")
    @classmethod
    def _canonical_model(cls, name: str) -> str:
        return canonical_model_name(name)

    def cache_key(self) -> str:
        """Everything that changes extracted keywords, and nothing else (not shard_size): the model by its weights'
        digest where it is local (the packaged default, a directory), by its hub name otherwise."""
        from ml_headcount.extraction.encoders import model_digest

        relevant = self.model_dump(exclude=MACHINE_ONLY_EXTRACTION_FIELDS)
        if digest := model_digest(self.model):
            relevant["model_sha256"] = digest
        if self.mode == "fast":
            relevant.pop("screen_margin")  # exact mode's knob changes nothing here
            relevant["fast_mode_version"] = FAST_MODE_VERSION
        relevant["extraction_version"] = EXTRACTION_VERSION
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


# How and where the model runs on one machine: never part of a cache key, never sent to a Modal container.
MACHINE_ONLY_EXTRACTION_FIELDS = frozenset(
    {
        "shard_size",
        "device",
        "inference_backend",
        "cpu_threads",
        "embedding_cache_size",
        "model_cache_dir",
        "max_cpu_weights_gb",
    }
)


class ScoringSettings(BaseModel, extra="forbid"):
    tfidf_ngram_min: int = 1
    tfidf_ngram_max: int = 4
    tfidf_max_features: int = 5000
    tfidf_min_df: int = 2
    tfidf_max_df: float = 0.85
    frequency_weight: float = Field(0.5, description="Weight of the frequency share; TF-IDF share gets the rest.")
    threshold: float = Field(0.6, description="Discriminative keywords score above this.")
    max_per_category: int = 100
    min_frequency: int = Field(
        2, description="A keyword extracted from fewer CVs than this is not scored as discriminative."
    )
    list_min_frequency: int = Field(5, description="Keyword lists need this total frequency.")
    batch_cvs: int = Field(
        10_000, ge=1, description="CVs whose texts are counted at a time (memory follows this, not the run)."
    )
    broad_score: float = 0.8
    broad_specificity: float = 0.7
    strict_score: float = 0.9
    strict_specificity: float = 0.8


class FilterSettings(BaseModel, extra="forbid"):
    """How keyword lists are learned from the scored keywords, and how their quality is measured (docs/filters.md)."""

    method: Literal["selected", "study"] = Field(
        "selected",
        description="selected: lists grown greedily from phrases found in CVs of several employers, their size "
        "chosen by inner cross-validation; study: the study's score and specificity thresholds (scoring.*_score).",
    )
    folds: int = Field(5, ge=2, description="Stratified folds for the cross-validated quality of every list.")
    inner_folds: int = Field(4, ge=2, description="selected: folds inside each training set that choose a list's size.")
    seed: int = Field(42, description="Seed of the fold assignment and of the bootstrap.")
    cv_repeats: int = Field(
        2,
        ge=1,
        description="Cross-validations with fold seeds seed, seed + 1, ...: their spread of balanced accuracy "
        "and the keywords' stability are reported; each repeat costs one more cross-validation.",
    )
    matcher: Literal["product", "phrase"] = Field(
        "product",
        description="How apply and estimate --keywords match a list: product (the run's n-grams after the "
        "study's cleaning) or phrase (phrase search of the list's query, as a search tool runs it; docs/filters.md).",
    )
    interval: float = Field(
        0.8, gt=0.0, lt=1.0, description="Coverage of the reported intervals (Wilson; bootstrap for balanced accuracy)."
    )
    bootstrap_resamples: int = Field(
        2000, ge=100, description="Stratified bootstrap resamples for the balanced-accuracy interval."
    )
    max_keywords: int = Field(40, ge=1, description="selected: most keywords in one list.")
    min_employers: int = Field(
        3,
        ge=1,
        description="selected: a keyword must occur in the category's CVs at this many different current employers.",
    )
    min_cvs: int = Field(
        3, ge=1, description="selected: a keyword must occur in at least this many of the category's CVs."
    )
    min_extracted: int = Field(
        0,
        ge=0,
        description="selected: KeyBERT must have extracted a keyword from at least this many of the category's CVs "
        "(0: any keyword extracted from any CV of the run).",
    )
    max_organisation_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="selected: a keyword found inside the company field of Experiences in more than this share of "
        "the CVs containing it counts as an organisation name and is not used.",
    )
    organisation_stop_list: list[str] = Field([], description="Organisation names never used as keywords (any case).")
    min_phrase_agreement: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="selected: of the training CVs either matcher finds a keyword in (the product's n-grams, phrase "
        "search of its query), the share both must find it in; keeps lists that a search tool runs as they were learned.",
    )
    strict_specificity: float = Field(
        0.95,
        gt=0.0,
        lt=1.0,
        description="selected: the strict list's target specificity, met by inner cross-validation.",
    )
    max_learning_cvs: int = Field(
        10_000,
        ge=10,
        description="Lists are learned, and cross-validated, on at most this many of a run's CVs (a seeded stratified "
        "sample; scores always use every CV). Learning cost grows with it; list quality stops improving long before.",
    )
    text_classifier: bool = Field(
        True,
        description="Learn a TF-IDF + logistic-regression classifier per category beside the lists, on the same "
        "CVs and folds (text_classifier.json; held-out annotations `<category>/tfidf` in heldout_matches.parquet), "
        "and let apply emit its `<category>/tfidf` columns where the run has one.",
    )
    apply_chunk_rows: int = Field(
        5000, ge=1, description="apply / cv-filter: input rows read, matched and written at a time (bounds memory)."
    )
    broad_weights: list[float] = Field(
        [1.0, 1.5, 2.0, 3.0],
        description="selected: costs of a false match relative to a found CV tried for the broad list (inner "
        "cross-validation keeps the best balanced accuracy).",
    )
    penalties: list[float] = Field(
        [0.0, 1.0, 2.0],
        description="selected: extra false matches charged per keyword, tried by inner cross-validation (higher: fewer, "
        "broader keywords).",
    )
    max_exclusions: int = Field(
        3,
        ge=0,
        description="selected: most exclusions of a list (`(A OR B) AND NOT (C OR D)`); how many (0: the plain OR "
        "list) is chosen by inner cross-validation.",
    )
    strict_weights: list[float] = Field(
        [3.0, 5.0, 8.0, 13.0, 21.0, 34.0],
        description="selected: costs tried for the strict list (inner cross-validation keeps the most sensitive "
        "one that reaches strict_specificity).",
    )


class ClusteringSettings(BaseModel, extra="forbid"):
    min_cluster_size: int = 3
    min_samples: int = 2
    cluster_selection_method: Literal["eom", "leaf"] = "eom"
    max_noise_fraction: float = Field(0.5, description="Above this share of noise, fall back to KMeans.")
    kmeans_max_k: int = 40
    seed: int = 42


class StorageSettings(BaseModel, extra="forbid"):
    url: str = Field("./artifacts", description="Local directory or s3://bucket/prefix for every artifact and cache.")
    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, R2, Ceph); default AWS_ENDPOINT_URL."
    )
    region: str | None = None


class ModalSettings(BaseModel, extra="forbid"):
    """Resources of the Modal functions: these defaults are what modal_workers/app.py declares, and a run's values
    reach the functions through `with_options`; see docs/modal.md for what they cost."""

    extraction_gpu: str = Field(
        "A10",
        description="Modal GPU string for keyword extraction (one shard per call): T4, L4, A10, L40S, A100-80GB, H100...",
    )
    clustering_gpu: str = Field("T4", description="Modal GPU string for keyword clustering (one call per run).")
    memory_mb: int = Field(8192, description="Memory per container, MiB.")
    cpu: float = Field(2.0, description="CPU cores per container.")
    timeout_s: int = Field(1800, description="Limit for one call (one shard), seconds.")
    max_retries: int = Field(3, ge=0, description="Modal-side retries of a failed call, each shard on its own.")
    retry_initial_delay_s: float = Field(1.0, ge=0.0, le=60.0, description="Delay before the first retry, seconds.")
    retry_backoff: float = Field(2.0, ge=1.0, le=10.0, description="Delay multiplier per retry (1 = fixed delay).")
    retry_max_delay_s: float = Field(
        60.0, ge=1.0, le=60.0, description="Cap on the delay between retries (Modal allows 1-60 s)."
    )
    extraction_max_containers: int = Field(
        10, ge=1, description="Most containers extracting at once: bounds the fleet and the bill."
    )
    clustering_max_containers: int = Field(1, ge=1, description="Most clustering containers (one call per run).")
    concurrency_limit: str | None = Field(
        "ml-headcount-modal",
        description="Prefect global concurrency limit held around a run's Modal session (created with 1 slot when "
        "missing), so two flow runs never pay for the same extraction; None = no guard.",
    )
    verbose: bool = Field(False, description="Stream Modal's build and container logs (modal.enable_output).")


class InboxSettings(BaseModel, extra="forbid"):
    """Where new CV files arrive and which dataset they join; a misspelt field is an error, not a silent default."""

    url: str = Field("./inbox", description="Local directory or s3://bucket/prefix where new CV files are dropped.")
    dataset: str = Field("cvs", description="Name of the registered dataset, kept under datasets/<name>/ in storage.")
    quarantine: str | None = Field(
        "quarantine",
        description="Folder inside the inbox that malformed files are moved to; None = leave them and report only.",
    )


class HeadcountSettings(BaseModel, extra="forbid"):
    """How `estimate` turns annotators into per-organisation headcounts (docs/headcount.md)."""

    annotators: list[str] | None = Field(
        None,
        description="Annotator columns to consider; None = every column present in both tables (and keyword lists).",
    )
    positive: str = Field(
        "1", description="The validation label (after ingest's normalisation) that marks an ML expert."
    )
    text_classifier: bool = Field(
        False,
        description="--keywords: the keyword run's TF-IDF + logistic-regression classifier is one more "
        "annotator (`<positive>/tfidf`), with its out-of-fold annotations for the CVs the run learned from "
        "(docs/filters.md).",
    )
    org_column: str | None = Field(None, description="Organisation column; None = detect from org_aliases.")
    # each table its own columns; None = ingest's setting, else detected from ingest's aliases
    validation_label_column: str | None = Field(None, description="The validation table's label column.")
    validation_text_column: str | None = Field(None, description="--keywords: the validation table's text column.")
    population_text_column: str | None = Field(None, description="--keywords: the population table's text column.")
    org_aliases: list[str] = ["organisation", "organization", "org", "company", "employer"]
    employees_aliases: list[str] = Field(
        ["employees", "employee_count", "headcount"], description="Column with the organisation's number of employees."
    )
    profiles_aliases: list[str] = Field(["profiles", "profile_count"], description="Counts mode: profiles searched.")
    max_joint_annotators: int = Field(
        2,
        ge=1,
        le=7,
        description="At most this many annotators enter the joint pattern model (chosen by leave-one-out fit).",
    )
    smoothing: float = Field(
        4.0,
        gt=0,
        description="Dirichlet concentration pulling each class's joint pattern distribution towards independence.",
    )
    transfer: float = Field(
        1.0,
        ge=0,
        description="Extra variance of the annotators' error rates in the population, in units of their "
        "validation resampling variance: 0 = they behave exactly as on the validation set; 1 = as differently as a "
        "second validation sample would (docs/headcount.md, calibration).",
    )
    prior: Literal["hierarchical", "fixed"] = Field(
        "hierarchical",
        description="Prevalence prior: a Beta learned across organisations, or Beta(prior_alpha, prior_beta).",
    )
    prior_alpha: float = Field(
        2.0, gt=0, description="fixed prior: Beta alpha (the study's class prior is Beta(2, 10))."
    )
    prior_beta: float = Field(10.0, gt=0, description="fixed prior: Beta beta.")
    draws: int = Field(1000, ge=10, description="Posterior predictive draws.")
    seed: int = Field(0, description="Seed of every random draw: the same inputs and seed give the same estimates.")
    grid_points: int = Field(
        256, ge=32, description="Points of the prevalence grid (uniform in logit, 1.1e-7 to 1 - 1.1e-7)."
    )
    error_rates: Literal["population", "validation"] = Field(
        "population",
        description="population: the annotators' error rates in the population are learned with the "
        "prevalences, the validation rates their prior; validation: the validation rates hold in the population.",
    )
    rate_shift_sd: float = Field(
        0.5, gt=0, description="Prior sd, in logit, of an annotator's population rate around its validation rate."
    )
    repair_counts: bool = Field(
        True,
        description="Counts tables: repair impossible counts by the stated rule and list them in repairs.csv; "
        "False refuses the table at the first one (docs/headcount.md).",
    )
    count_aliases: list[str] = Field(["count", "n"], description="Pattern tables: the number of profiles of each row.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ML_HEADCOUNT_", env_nested_delimiter="__", extra="forbid")

    backend: Literal["local", "modal"] = "local"
    workers: int | None = Field(
        None,
        ge=1,
        description="Processes for CPU-bound work on large runs (cleaning texts, counting keywords in them); "
        "None = every CPU this process may use.",
    )
    ingest: IngestSettings = IngestSettings()
    extraction: ExtractionSettings = ExtractionSettings()
    scoring: ScoringSettings = ScoringSettings()
    filters: FilterSettings = FilterSettings()
    clustering: ClusteringSettings = ClusteringSettings()
    storage: StorageSettings = StorageSettings()
    modal: ModalSettings = ModalSettings()
    inbox: InboxSettings = InboxSettings()
    headcount: HeadcountSettings = HeadcountSettings()

    def cpu_workers(self) -> int:
        """Processes to use for CPU-bound work: `workers`, or every CPU this process may run on."""
        return self.workers or available_cpus()


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the system has one (Linux), else every CPU (macOS,
    Windows)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


class SettingsError(UserError):
    """Settings that cannot be used: a misspelt field, a value out of range, an unreadable config file."""


def load_settings(config_file: str | Path | None = None, **overrides) -> Settings:
    """Defaults < config file < environment < overrides (nested dicts merge)."""
    source = f"settings ({config_file}, environment, options)" if config_file else "settings (environment, options)"
    try:
        from_file = _read_config_file(Path(config_file)) if config_file else {}
        from_env = Settings().model_dump(exclude_unset=True)  # BaseSettings reads the environment
        return Settings.model_validate(_deep_merge(_deep_merge(from_file, from_env), overrides))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors())
        raise SettingsError(f"{source}: {problems}") from None


def _read_config_file(path: Path) -> dict:
    try:
        text = path.read_text()
        if path.suffix == ".toml":
            values = tomllib.loads(text)
        elif path.suffix == ".json":
            values = json.loads(text)
        else:
            values = yaml.safe_load(text) or {}
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        raise SettingsError(f"{path}: cannot read the config file ({error})") from None
    if not isinstance(values, dict):
        raise SettingsError(f"{path}: a config file holds a mapping of sections, not {type(values).__name__}")
    return values


def _deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
