"""A keyword list as a query people-search tools run: the linter, and the query in each dialect.

Dialects (`DIALECTS`):

- `boolean`: LinkedIn-style boolean search: quoted phrases, uppercase `OR` /
  `NOT`, parentheses: `("a b" OR "c") NOT ("d")`. SQLite FTS5's MATCH syntax
  is the same, so the query runs there verbatim.
- `lucene`: Lucene / Elasticsearch / OpenSearch `query_string`:
  `("a b" OR "c") AND NOT ("d")`.
- `postgres`: a PostgreSQL regular-expression condition on a column `text`
  (`text ~* '...'`, `AND text !~* '...'` for exclusions): each phrase is its
  tokens separated by one or more non-alphanumeric characters, between
  non-alphanumeric boundaries, which is what phrase search on letter-and-digit
  tokens means.

The linter (`lint`) turns terms into phrases the dialects match as
`phrase_matching.PhraseMatcher` does, and says what it changed: non-ASCII
punctuation and quote characters (never inside a phrase: a phrase is its
letter-and-digit tokens), terms an index would drop (only English stop words,
or shorter than `MIN_TERM_CHARS`), duplicates, and terms that contain another
term of the same group (an OR already matches every text they match). It
refuses (`QueryError`) a query over its dialect's length limit: cutting terms
would change what the list finds.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from ml_headcount.errors import UserError
from ml_headcount.scoring.keyword_list import exclusions_of
from ml_headcount.scoring.phrase_matching import SearchQuery, phrase_of

MIN_TERM_CHARS = 2

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (Elasticsearch's `_english_` stop words): an index built with
# them drops these tokens, so a term made only of them finds nothing there.
INDEX_STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    }
)


@dataclass(frozen=True)
class Dialect:
    """A search tool's query language: its name, what it is, and its documented limit on phrases."""

    name: str
    description: str
    limit: str  # the documented limit, or "undocumented"
    max_phrases: int | None  # what the linter enforces; None where no limit is documented


DIALECTS = {
    "boolean": Dialect(
        "boolean",
        "LinkedIn-style boolean search (quoted phrases, OR, NOT, parentheses); SQLite FTS5 MATCH",
        "undocumented (LinkedIn does not publish a query length limit)",
        None,
    ),
    "lucene": Dialect(
        "lucene",
        "Lucene / Elasticsearch / OpenSearch query_string",
        "1024 clauses: Lucene's default maxClauseCount of a BooleanQuery (each phrase is one clause)",
        1024,
    ),
    "postgres": Dialect(
        "postgres",
        "PostgreSQL regular-expression condition on a column `text` (~*, !~*)",
        "undocumented (PostgreSQL reports 'regular expression is too complex' past an internal size)",
        None,
    ),
}


class QueryError(UserError):
    """A list that cannot become a query of the dialect: unknown dialect, nothing left, or over the length limit."""


def dialect(name: str) -> Dialect:
    """The dialect called `name`; a QueryError naming the known ones otherwise."""
    if name not in DIALECTS:
        raise QueryError(f"unknown dialect {name!r}; use one of {', '.join(DIALECTS)}")
    return DIALECTS[name]


def _non_ascii_punctuation(term: str) -> list[str]:
    return sorted({f"U+{ord(c):04X}" for c in term if ord(c) > 127 and unicodedata.category(c)[0] in "PSZ"})


def lint_terms(terms: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The phrases of one OR group, and a note for every repair (what changed and why)."""
    notes: list[str] = []
    phrases: list[str] = []
    for term in terms:
        phrase = phrase_of(term)
        if odd := _non_ascii_punctuation(term):
            notes.append(f"{term!r}: non-ASCII punctuation {', '.join(odd)} removed (phrase {phrase!r})")
        if '"' in term:
            notes.append(f"{term!r}: quote characters removed (phrase {phrase!r})")
        if len(phrase.replace(" ", "")) < MIN_TERM_CHARS:
            notes.append(f"{term!r}: dropped, shorter than {MIN_TERM_CHARS} characters as tokens")
        elif set(phrase.split(" ")) <= INDEX_STOP_WORDS:
            notes.append(f"{term!r}: dropped, only stop words that an English index drops")
        elif phrase in phrases:
            notes.append(f"{term!r}: dropped, a duplicate of {phrase!r}")
        else:
            phrases.append(phrase)
    kept = []
    for phrase in phrases:
        inner = next((other for other in phrases if other != phrase and f" {other} " in f" {phrase} "), None)
        if inner:
            notes.append(f"{phrase!r}: dropped, contains {inner!r} (every text it matches, that one matches)")
        else:
            kept.append(phrase)
    return tuple(kept), notes


def lint(any_of: list[str], none_of: list[str] = ()) -> tuple[SearchQuery, list[str]]:
    """The query of a list (and its exclusions), with the linter's notes; QueryError when no phrase is left."""
    wanted, notes = lint_terms(list(any_of))
    excluded, more = lint_terms(list(none_of))
    if not wanted:
        raise QueryError("no usable phrase left in the list" + (f" ({'; '.join(notes)})" if notes else ""))
    return SearchQuery(wanted, excluded), notes + more


def list_query(keywords: list[str]) -> SearchQuery:
    """A list's query (its keywords, AND NOT its exclusions) as queries.json holds it (the linter's), or one that
    matches nothing when no phrase is left."""
    try:
        return lint(keywords, exclusions_of(keywords))[0]
    except QueryError:
        return SearchQuery(())


def render(query: SearchQuery, name: str) -> str:
    """The query in dialect `name`; QueryError when it is over the dialect's limit."""
    spec = dialect(name)
    phrases = len(query.any_of) + len(query.none_of)
    if spec.max_phrases is not None and phrases > spec.max_phrases:
        raise QueryError(f"{phrases} phrases: over the {name} limit of {spec.limit}")
    if name == "postgres":
        condition = f"text ~* '{_regex(query.any_of)}'"
        return condition + (f" AND text !~* '{_regex(query.none_of)}'" if query.none_of else "")
    wanted = " OR ".join(f'"{p}"' for p in query.any_of)
    if not query.none_of:
        return wanted
    excluded = " OR ".join(f'"{p}"' for p in query.none_of)
    return f"({wanted}) {'NOT' if name == 'boolean' else 'AND NOT'} ({excluded})"


def _regex(phrases: tuple[str, ...]) -> str:
    """A POSIX (PostgreSQL ARE) pattern: any phrase, its tokens separated and bounded by non-alphanumerics."""
    alternatives = "|".join("[^[:alnum:]]+".join(p.split(" ")) for p in phrases)  # tokens are [[:alnum:]] only
    return f"(^|[^[:alnum:]])({alternatives})([^[:alnum:]]|$)"


def query_document(any_of: list[str], none_of: list[str] = ()) -> dict:
    """One list's entry in queries.json: its phrases, the linter's notes, complexity and the query in every dialect
    (or why a dialect refuses it)."""
    try:
        query, notes = lint(any_of, none_of)
    except QueryError as error:
        return {
            "any_of": [],
            "none_of": [],
            "lint": [str(error)],
            "complexity": None,
            "dialects": {name: {"refused": str(error)} for name in DIALECTS},
        }
    dialects = {}
    for name in DIALECTS:
        try:
            text = render(query, name)
            dialects[name] = {"query": text, "chars": len(text)}
        except QueryError as error:
            dialects[name] = {"refused": str(error)}
    return {
        "any_of": list(query.any_of),
        "none_of": list(query.none_of),
        "lint": notes,
        "complexity": query.complexity,
        "dialects": dialects,
    }


def queries_document(lists: dict) -> dict:
    """queries.json of a run from its keyword_lists.json: every list as a query in every dialect, with its quality
    under the product's matcher and under phrase search (the queries' matcher), in-sample and cross-validated."""
    positive = positive_of(lists)
    order = sorted(lists, key=lambda c: c != positive)  # the category the lists are for first; stable otherwise
    return {
        "positive": positive,
        "dialects": {name: {"description": d.description, "limit": d.limit} for name, d in DIALECTS.items()},
        "matcher": "phrase search: letter-and-digit tokens, case folded, a phrase's tokens consecutive (docs/lists.md)",
        "queries": {
            category: {
                name: {
                    **query_document(entry["keywords"], entry.get("exclusions", [])),
                    "role": entry.get("role"),
                    "new_sample": entry.get("new_sample"),  # what a new sample of rated CVs will see (run's matcher)
                    "quality": _quality(entry),
                }
                for name, entry in lists[category].items()
            }
            for category in order
        },
    }


def positive_of(lists: dict) -> str | None:
    """The category keyword_lists.json's lists are for (`lists.positive`): the one whose lists have the role
    `positive`; None for a run older than roles."""
    return next((c for c, by_name in lists.items() if _role(by_name) == "positive"), None)


def _role(by_name: dict) -> str | None:
    """A category's role in the run (`positive`, or the complement of it), as keyword_lists.json records it."""
    return next(iter(by_name.values()), {}).get("role")


def _quality(entry: dict) -> dict:
    seeds = entry.get("cross_validated_seeds") or {}
    return {
        matcher: {
            "in_sample_sensitivity": entry.get(f"in_sample{prefix}_sensitivity"),
            "in_sample_specificity": entry.get(f"in_sample{prefix}_specificity"),
            "cross_validated": entry.get(f"cross_validated{suffix}"),
            "seed_balanced_accuracy": seeds.get(f"{matcher}_balanced_accuracy"),
            "seed_spread": seeds.get(f"{matcher}_spread"),
        }
        for matcher, prefix, suffix in [("product", "", ""), ("phrase", "_phrase", "_phrase")]
    }
