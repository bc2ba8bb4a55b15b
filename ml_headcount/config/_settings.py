"""The one typed settings object.

Defaults are the study's parameters (docs/usage.md, "How keywords are scored"). Values come, lowest
priority first, from these defaults, a YAML/TOML/JSON file, environment
variables (`ML_HEADCOUNT_<SECTION>__<FIELD>`, e.g.
`ML_HEADCOUNT_EXTRACTION__TOP_N=10`) and explicit keyword arguments. The same
object is the `cv-keywords` flow's parameter, so the Prefect UI shows and edits
it. It never holds credentials: those come from the standard AWS / Modal
environment only.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml_headcount.config._extraction import ExtractionSettings
from ml_headcount.config._headcount import HeadcountSettings
from ml_headcount.config._infrastructure import InboxSettings, ModalSettings, StorageSettings
from ml_headcount.config._ingest import IngestSettings
from ml_headcount.config._keywords import ClusteringSettings, ListSettings, ScoringSettings
from ml_headcount.config._report import ReportSettings
from ml_headcount.errors import UserError


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
    lists: ListSettings = ListSettings()
    clustering: ClusteringSettings = ClusteringSettings()
    storage: StorageSettings = StorageSettings()
    modal: ModalSettings = ModalSettings()
    inbox: InboxSettings = InboxSettings()
    headcount: HeadcountSettings = HeadcountSettings()
    report: ReportSettings = ReportSettings()

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
        merged = _deep_merge(_deep_merge(from_file, from_env), overrides)
        if "filters" in merged:  # the section's name until the keyword lists got one name
            raise SettingsError(f"{source}: filters: this section is called lists now; rename it")
        return Settings.model_validate(merged)
    except ValidationError as error:
        problems = "; ".join(_problem(e) for e in error.errors())
        raise SettingsError(f"{source}: {problems}") from None


def _problem(error: dict) -> str:
    """One validation error as `section.field: message`; a misspelt name gets 'did you mean' its closest field."""
    where = ".".join(map(str, error["loc"])) or "settings"
    if error["type"] != "extra_forbidden":
        return f"{where}: {error['msg']}"
    model: type[BaseModel] | None = Settings
    for part in error["loc"][:-1]:  # down to the section that holds the misspelt name
        field = model.model_fields.get(str(part)) if model else None
        annotation = field.annotation if field else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    close = difflib.get_close_matches(str(error["loc"][-1]), list(model.model_fields) if model else [], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{where}: no such setting{hint}"


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
