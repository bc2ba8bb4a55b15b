"""Each dialect's query, run by a real engine over the rated CVs, matches exactly as the product's phrase matcher.

Engines: SQLite FTS5 (Python's sqlite3) runs the `boolean` query verbatim;
the `lucene` query is parsed by luqum (a Lucene query parser) and its tree
written as the FTS5 query it means, run by FTS5; the `postgres` condition runs
on a private PostgreSQL server started for the test. The queries are a real
run's, one with every corner the linter handles, and one of the learner's
`(A OR B) AND NOT (C)` form. luqum is a dev dependency; PostgreSQL a Debian
package (.ci/run installs it): without it the test skips, naming why, except in CI.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_headcount.config import HeadcountSettings, IngestSettings, ListSettings, StorageSettings, load_settings
from ml_headcount.corpus.ingest import ingest
from ml_headcount.headcount.keyword_annotators import keyword_values
from ml_headcount.io.storage import ArtifactStore
from ml_headcount.lists.evidence import build_corpus, corpus_evidence
from ml_headcount.lists.greedy import grow_list
from ml_headcount.lists.queries import (
    DIALECTS,
    QueryError,
    lint,
    list_query,
    query_document,
    render,
)
from ml_headcount.lists.run_lists import load_run_lists
from ml_headcount.runs.layout import RunLayout
from ml_headcount.scoring.keyword_list import KeywordList
from ml_headcount.scoring.phrase_matching import PhraseMatcher, SearchQuery, search_tokens
from tests.conftest import RATED_CVS, unavailable

# the FTS5 index of letter-and-digit tokens, case folded, accents kept; FTS5's unicode61 otherwise keeps some
# symbols (emoji, private-use characters) inside tokens, so every non-ASCII character of the texts that is neither
# a letter nor a digit is named a separator
FTS5_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* N*' separators '{}'"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

# phrases with hyphens, digits, apostrophes, non-ASCII punctuation, stop words inside, a duplicate and a contained one
EDGE_CASES = (
    [
        "machine learning",
        "reinforcement‐learning",
        "large language models",
        "gpt 4",
        "state of the art",
        "ph.d",
        "o'reilly",
        "ai safety",
        "deep learning",
        "deep learning research",
    ],
    ["sales", "marketing manager"],
)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """The 454 rated CVs, cleaned as a run cleans them (what the run's lists are matched against)."""
    return ingest(str(RATED_CVS), IngestSettings()).cvs["text"].tolist()


@pytest.fixture(scope="module")
def fts5(texts):
    connection = sqlite3.connect(":memory:")
    separators = "".join(sorted({c for text in texts for c in text if not c.isascii() and not c.isalnum()}))
    assert "'" not in separators and '"' not in separators
    connection.execute(f'CREATE VIRTUAL TABLE cvs USING fts5(text, tokenize="{FTS5_TOKENIZER.format(separators)}")')
    connection.executemany("INSERT INTO cvs(rowid, text) VALUES (?, ?)", [(i, t) for i, t in enumerate(texts)])
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def queries(rated_sample_run) -> list[SearchQuery]:
    """The queries of a real run's lists (queries.json of the 60-CV rated run), one with every edge case, and the
    learner's `(A OR B ...) AND NOT (C ...)` form: a broad list of the run's CVs grown with up to 3 exclusions."""
    document = json.loads((rated_sample_run / "queries.json").read_text())
    learned = [
        SearchQuery(tuple(e["any_of"]), tuple(e["none_of"]))
        for by_name in document["queries"].values()
        for e in by_name.values()
        if e["any_of"]
    ]
    assert learned, "the run wrote no query"
    settings = load_settings()
    corpus = build_corpus(
        pd.read_parquet(rated_sample_run / "cvs.parquet"),
        pd.read_parquet(rated_sample_run / "keywords.parquet"),
        settings.extraction,
    )
    evidence = corpus_evidence(corpus, np.arange(len(corpus.cvs)), np.arange(len(corpus.vocabulary)))
    path, excluded = grow_list(evidence, "1", corpus.vocabulary, settings.lists, (1.0, 0.0, 10), 3)
    excluding = list_query(KeywordList([corpus.vocabulary[j] for j in path], [corpus.vocabulary[j] for j in excluded]))
    assert excluding.none_of and excluding.complexity["form"] == "any AND NOT any"
    return learned + [lint(*EDGE_CASES)[0], excluding]


def fts5_rows(connection: sqlite3.Connection, match: str, n: int) -> np.ndarray:
    hits = np.zeros(n, dtype=bool)
    hits[[row for (row,) in connection.execute("SELECT rowid FROM cvs WHERE cvs MATCH ?", (match,))]] = True
    return hits


def phrase_rows(query: SearchQuery, texts: list[str]) -> np.ndarray:
    return PhraseMatcher({"q": query}).match(texts)[:, 0]


def test_fts5_indexes_the_tokens_the_phrase_matcher_uses(fts5, texts):
    fts5.execute("CREATE VIRTUAL TABLE IF NOT EXISTS terms USING fts5vocab(cvs, 'row')")
    vocabulary = {term for (term,) in fts5.execute("SELECT term FROM terms")}
    assert vocabulary == {token for text in texts for token in search_tokens(text)}


@pytest.mark.timeout(2400)  # the first test to use the run waits for its extraction
def test_boolean_queries_run_verbatim_in_sqlite_fts5_and_match_as_the_phrase_matcher(fts5, texts, queries):
    for query in queries:
        engine = fts5_rows(fts5, render(query, "boolean"), len(texts))
        assert (engine == phrase_rows(query, texts)).all(), render(query, "boolean")
        assert engine.any()


def _lucene_as_fts5(node) -> str:
    """The FTS5 query a luqum tree means: phrases, OR, AND, AND NOT (FTS5's binary NOT) and groups."""
    from luqum import tree

    if isinstance(node, tree.Phrase):
        return node.value
    if isinstance(node, tree.Group):
        return f"({_lucene_as_fts5(node.expr)})"
    if isinstance(node, tree.OrOperation):
        return " OR ".join(_lucene_as_fts5(c) for c in node.children)
    if isinstance(node, tree.AndOperation):
        wanted = [_lucene_as_fts5(c) for c in node.children if not isinstance(c, tree.Not)]
        unwanted = [_lucene_as_fts5(c.a) for c in node.children if isinstance(c, tree.Not)]
        return f"({' AND '.join(wanted)})" + "".join(f" NOT {u}" for u in unwanted)
    raise AssertionError(f"the lucene dialect never writes {type(node).__name__}: {node}")


def test_lucene_queries_parsed_by_a_lucene_parser_match_as_the_phrase_matcher(fts5, texts, queries):
    from luqum.parser import parser

    for query in queries:
        lucene = render(query, "lucene")
        engine = fts5_rows(fts5, _lucene_as_fts5(parser.parse(lucene)), len(texts))
        assert (engine == phrase_rows(query, texts)).all(), lucene


@pytest.fixture(scope="module")
def postgres(texts):
    """psql on a private PostgreSQL server (UTF-8, C.UTF-8 locale) holding the cleaned rated CVs as cvs(id, text)."""
    if not (PG_BIN / "initdb").exists() or not shutil.which("psql"):
        unavailable(f"no PostgreSQL server binaries at {PG_BIN} (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="ml-headcount-postgres-"))  # not under pytest's root-only folders
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # the server refuses to run as root
    if as_owner:
        shutil.chown(root, "postgres")
    data = root / "data"
    subprocess.run(
        as_owner + [str(PG_BIN / "initdb"), "-D", str(data), "-E", "UTF8", "--locale=C.UTF-8", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        as_owner
        + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o", f"-k {root} -h ''", "start"],
        check=True,
        capture_output=True,
    )
    table = root / "cvs.csv"
    with table.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(enumerate(texts))
    os.chmod(table, 0o644)

    def psql(sql: str) -> str:
        return subprocess.run(
            as_owner + ["psql", "-h", str(root), "-d", "postgres", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    try:
        psql("CREATE TABLE cvs (id int, text text)")
        psql(f"\\copy cvs FROM '{table}' WITH (FORMAT csv)")
        yield psql
    finally:
        subprocess.run(
            as_owner + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], check=False, capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_conditions_run_in_postgresql_and_match_as_the_phrase_matcher(postgres, texts, queries):
    assert int(postgres("SELECT count(*) FROM cvs")) == len(texts)
    for query in queries:
        condition = render(query, "postgres")
        engine = np.zeros(len(texts), dtype=bool)
        engine[[int(row) for row in postgres(f"SELECT id FROM cvs WHERE {condition}").split()]] = True
        assert (engine == phrase_rows(query, texts)).all(), condition


def test_the_linter_repairs_what_a_search_tool_would_misread():
    query, notes = lint(*EDGE_CASES)
    assert query.any_of == (
        "machine learning",
        "reinforcement learning",
        "large language models",
        "gpt 4",
        "state of the art",
        "ph d",
        "o reilly",
        "ai safety",
        "deep learning",
    )
    assert query.none_of == ("sales", "marketing manager")
    assert any("U+2010" in note for note in notes) and any("contains 'deep learning'" in note for note in notes)
    for dialect in ("boolean", "lucene"):
        text = render(query, dialect)
        assert text.isascii() and text.count('"') % 2 == 0 and ",," not in text
    assert lint(["the", "c++", "ai", "ai"])[0].any_of == ("ai",)
    with pytest.raises(QueryError, match="no usable phrase"):
        lint(["of the", "x"])


def test_a_query_over_the_documented_lucene_limit_is_refused_not_cut():
    too_long = [f"term{i}" for i in range(1025)]
    entry = query_document(too_long)
    assert "1024 clauses" in entry["dialects"]["lucene"]["refused"]
    assert entry["dialects"]["boolean"]["query"].count(" OR ") == 1024  # no documented limit there


def test_query_cli_prints_each_dialects_query_and_refuses_bad_input_in_one_line(rated_sample_run, tmp_path, capsys):
    from flows import cli

    document = json.loads((rated_sample_run / "queries.json").read_text())
    for name in DIALECTS:
        assert cli.main(["query", str(rated_sample_run), "--dialect", name, "--list", "strict"]) == 0
        assert capsys.readouterr().out.strip() == document["queries"]["1"]["strict"]["dialects"][name]["query"]
    old = tmp_path / "runs" / "old"
    shutil.copytree(rated_sample_run, old)
    (old / "queries.json").unlink()
    for argv, message in [
        ([str(rated_sample_run), "--dialect", "sql"], "unknown dialect 'sql'"),
        ([str(rated_sample_run), "--category", "2"], "no list 2/broad"),
        ([str(tmp_path / "runs" / "missing")], "no complete run there"),
        ([str(old)], "the run has no queries"),
    ]:
        assert cli.main(["query", *argv]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and message in error[0], error


def test_phrase_matcher_of_a_run_in_apply_and_as_annotators_is_its_queries_phrase_search(rated_sample_run, texts):
    store = ArtifactStore(StorageSettings(url=str(rated_sample_run.parent.parent)))
    run = RunLayout(rated_sample_run.name)
    run_lists = load_run_lists(store, run.run_id)
    matched = run_lists.matcher("phrase").match(texts)
    document = json.loads((rated_sample_run / "queries.json").read_text())["queries"]
    for column, name in enumerate(run_lists.lists):
        category, list_name = name.split("/")
        entry = document[category][list_name]
        query = SearchQuery(tuple(entry["any_of"]), tuple(entry["none_of"]))
        assert (matched[:, column] == phrase_rows(query, texts)).all()

    # estimate --keywords with lists.matcher = phrase: learned CVs get the held-out phrase matches, others phrase
    # search
    rated = ingest(str(RATED_CVS), IngestSettings()).cvs
    learned = set(pd.read_parquet(rated_sample_run / "cvs.parquet")["cv_id"])
    table = rated.rename(columns={"text": "cv_text"})
    validation, population = keyword_values(
        store,
        run,
        table,
        "validation.csv",
        table,
        "population.csv",
        HeadcountSettings(positive="1", text_classifier=False),
        ListSettings(matcher="phrase"),
        IngestSettings(),
    )
    assert set(validation) == {"1/strict@phrase", "1/broad@phrase"}
    heldout = pd.read_parquet(rated_sample_run / "heldout_matches.parquet").set_index("cv_id")
    inside = rated["cv_id"].isin(learned).to_numpy()
    for name, values in validation.items():
        assert (values[inside] == heldout[name].reindex(rated["cv_id"][inside]).to_numpy()).all()
        entry = document["1"][name.split("/")[1].removesuffix("@phrase")]
        phrase = phrase_rows(SearchQuery(tuple(entry["any_of"]), tuple(entry["none_of"])), rated["text"].tolist())
        assert (values[~inside] == phrase[~inside]).all() and (population[name] == phrase).all()
