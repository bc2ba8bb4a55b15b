"""Settings: defaults are the study's, then a file, then the environment, then explicit values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ml_headcount.config import ExtractionSettings, load_settings


def test_defaults_are_the_study_parameters():
    settings = load_settings()
    assert (settings.extraction.top_n, settings.extraction.ngram_max, settings.extraction.diversity) == (30, 4, 0.5)
    assert settings.scoring.threshold == 0.6 and settings.scoring.max_per_category == 100
    assert settings.storage.url == "./artifacts" and settings.backend == "local"


def test_file_then_environment_then_overrides(tmp_path, monkeypatch):
    config = tmp_path / "settings.yaml"
    config.write_text("extraction:\n  top_n: 10\n  diversity: 0.3\nscoring:\n  threshold: 0.7\n")
    monkeypatch.setenv("ML_HEADCOUNT_EXTRACTION__TOP_N", "12")
    settings = load_settings(config, scoring={"threshold": 0.75})
    assert settings.extraction.top_n == 12
    assert settings.extraction.diversity == 0.3
    assert settings.scoring.threshold == 0.75


def test_invalid_values_and_misspelt_fields_are_rejected():
    with pytest.raises(ValidationError):
        ExtractionSettings(ngram_min=3, ngram_max=2)
    with pytest.raises(ValidationError, match="top_k"):
        load_settings(extraction={"top_k": 10})


def test_cache_key_ignores_sharding_but_not_parameters():
    base = ExtractionSettings()
    assert base.cache_key() == ExtractionSettings(shard_size=7, batch_size=8).cache_key()
    assert base.cache_key() != ExtractionSettings(top_n=29).cache_key()
    assert base.cache_key() != ExtractionSettings(model="/models/other").cache_key()
