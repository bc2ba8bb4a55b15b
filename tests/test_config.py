"""Settings: defaults are the study's, then a file, then the environment, then explicit values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ml_headcount.config import ExtractionSettings, SettingsError, load_settings, machine_only_fields, result_fields
from ml_headcount.extraction.cache import cache_key


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
    with pytest.raises(SettingsError, match="extraction.top_k"):
        load_settings(extraction={"top_k": 10})


def test_a_config_file_with_the_old_filters_section_is_told_its_new_name(tmp_path):
    old = tmp_path / "settings.yaml"
    old.write_text("filters:\n  method: study\n")
    with pytest.raises(SettingsError, match="settings.yaml.*filters: this section is called lists now"):
        load_settings(old)
    (tmp_path / "new.yaml").write_text("lists:\n  method: study\n")
    assert load_settings(tmp_path / "new.yaml").lists.method == "study"


def test_unreadable_config_files_are_user_errors(tmp_path):
    listed = tmp_path / "settings.yaml"
    listed.write_text("- top_n\n- 10\n")
    with pytest.raises(SettingsError, match="settings.yaml: a config file holds a mapping"):
        load_settings(listed)
    with pytest.raises(SettingsError, match="missing.toml: cannot read"):
        load_settings(tmp_path / "missing.toml")


def test_bare_hub_model_names_mean_the_sentence_transformers_organisation():
    # one name everywhere: the image downloads it, the container loads it, the cache key hashes it
    assert ExtractionSettings(model="all-mpnet-base-v2").model == "sentence-transformers/all-mpnet-base-v2"
    assert ExtractionSettings(model="BAAI/bge-small-en").model == "BAAI/bge-small-en"
    assert ExtractionSettings().model == "all-MiniLM-L6-v2"  # the packaged default keeps its name
    assert cache_key(ExtractionSettings(model="all-mpnet-base-v2")) == cache_key(
        ExtractionSettings(model="sentence-transformers/all-mpnet-base-v2")
    )


def test_cache_key_ignores_sharding_but_not_parameters():
    base = ExtractionSettings()
    assert cache_key(base) == cache_key(ExtractionSettings(shard_size=7, device="cpu", inference_backend="torch"))
    assert cache_key(base) != cache_key(ExtractionSettings(precision="float16"))
    assert cache_key(base) != cache_key(ExtractionSettings(top_n=29))
    assert cache_key(base) != cache_key(ExtractionSettings(model="/models/other"))


def _another_value(value):
    """A different value of a settings field's type, for the key tests below."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, list):
        return [*value, "another"]
    return "another" if value is None or isinstance(value, str) else None


# what a cache key takes of each section that enters one (tasks/ingest.py, tasks/scoring.py, clustering.py)
SECTION_KEYS = {
    "extraction": cache_key,
    "ingest": result_fields,
    "scoring": result_fields,
    "lists": result_fields,
    "clustering": result_fields,
}


@pytest.mark.parametrize("section", SECTION_KEYS)
def test_every_settings_field_is_in_its_cache_key_or_marked_machine_only(section):
    """A field that changes a result must change the key (or a stale result is reused); one marked MACHINE_ONLY must
    not (or every machine computes anew). Fast mode's key leaves exact mode's screen_margin out by design."""
    base = load_settings()
    kind = type(getattr(base, section))
    unmarked_but_unkeyed, marked_but_keyed = [], []
    for name in kind.model_fields:
        changed = getattr(base, section).model_copy(
            update={name: _another_value(getattr(getattr(base, section), name))}
        )
        keyed = SECTION_KEYS[section](changed) != SECTION_KEYS[section](getattr(base, section))
        marked = name in machine_only_fields(kind)
        (marked_but_keyed if keyed and marked else unmarked_but_unkeyed if not keyed and not marked else []).append(
            name
        )
    assert (unmarked_but_unkeyed, marked_but_keyed) == ([], [])
    fast = ExtractionSettings(mode="fast")
    assert cache_key(fast.model_copy(update={"screen_margin": 0.5})) == cache_key(fast)
