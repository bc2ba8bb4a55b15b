"""Counts tables as people-search tools give them: per organisation, match counts over stated denominators.

Columns (docs/headcount.md, "Counts tables"):
- `employees`; `profiles` (profiles searched, default: `employees`);
- per annotator `a`, its matches; optionally `a:profiles`, the profiles `a` was applied to (default `profiles`),
  e.g. an LLM that rated a sample while keyword counts cover every employee;
- combinations of two annotators with the same denominator: `a&b` (both match) or `a&!b` (a matches, b not);
  with the two marginals they give the exact 2x2 pattern table.

Real tables break the arithmetic (a tool's rounded headcount below its match counts, an AND above a marginal).
They are repaired by the rule below, each repair listed; with `repair_counts` off, the first one is refused.
1. a negative count is 0, a non-integer count is rounded (`number`);
2. a combination above what its marginals allow is lowered to it (`combination`);
3. a denominator below its annotator's matches, or below a + b - AND of a pair, is raised to it (`denominator`);
4. `employees` below a denominator (a headcount of 0 with matches too) is raised to the largest (`employees`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_headcount.errors import InputError
from ml_headcount.headcount.annotator_evidence import (
    CombinedEvidence,
    MarginalCountEvidence,
    PatternEvidence,
    ProfileGroups,
)
from ml_headcount.headcount.annotators import PatternSpace

DENOMINATOR_SUFFIX = ":profiles"
LARGEST_COUNT = 10**12  # above any organisation's headcount: a count beyond it is a mistake, not a number to repair
REPAIR_COLUMNS = ["row", "organisation", "column", "value", "repaired", "rule"]


@dataclass
class CountData:
    """Repaired counts for the annotators `names`: matches and denominators (organisations, annotators)."""

    matches: np.ndarray
    denominators: np.ndarray
    denominator_columns: list[str]  # per annotator, the column its denominator came from
    pairs: dict[tuple[int, int], np.ndarray]  # (a, b) -> profiles matching both
    employees: np.ndarray
    profiles: np.ndarray
    repairs: pd.DataFrame

    @property
    def shown_apart(self) -> np.ndarray:
        """(annotators, annotators) the pairs that a combination column shows not to be nested: in some
        organisation each matched a profile the other did not (annotators.shown_apart)."""
        k = self.matches.shape[1]
        one_only = np.zeros((k, k), bool)
        for (a, b), both in self.pairs.items():
            one_only[a, b], one_only[b, a] = (self.matches[:, a] > both).any(), (self.matches[:, b] > both).any()
        return one_only & one_only.T


def whole_numbers(table: pd.DataFrame, column: str, url: str) -> np.ndarray:
    """A column of whole numbers from 0 to LARGEST_COUNT; an InputError naming the first row that is not one."""
    numbers = pd.to_numeric(table[column], errors="coerce")
    bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0) | (numbers > LARGEST_COUNT)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        value = table[column].iloc[row - 1]
        value = value.item() if isinstance(value, np.generic) else value
        reason = (
            f"is larger than any headcount ({LARGEST_COUNT:g})"
            if numbers.iloc[row - 1] > LARGEST_COUNT
            else "is not a whole number >= 0"
        )
        raise InputError(f"{url}: row {row}, column {column!r}: {value!r} {reason}")
    return numbers.to_numpy().astype(np.int64)


def check_totals(counts: np.ndarray, index: np.ndarray, organisations: list[str], url: str, column: str) -> None:
    """An InputError naming the row where an organisation's counts summed over its rows (a pattern table's) pass
    LARGEST_COUNT: each row's count is bounded, so 10,000 rows of 10^12 would otherwise be 10^16 profiles."""
    running = pd.Series(counts, dtype=np.float64).groupby(index).cumsum().to_numpy()  # exact far beyond the bound
    for row in np.flatnonzero(running > LARGEST_COUNT)[:1] + 1:
        raise InputError(
            f"{url}: row {row}, column {column!r}: organisation {organisations[index[row - 1]]!r} has "
            f"{running[row - 1]:,.0f} profiles up to this row, more than any headcount ({LARGEST_COUNT:g})"
        )


class _Repairs:
    """The repairs made so far, or the refusal of the first one."""

    def __init__(self, url: str, organisations: list[str], allowed: bool):
        self.url, self.organisations, self.allowed, self.rows = url, organisations, allowed, []

    def apply(self, column: str, old: np.ndarray, new: np.ndarray, rule: str, why: str) -> np.ndarray:
        for i in np.flatnonzero(old != new):
            if not self.allowed:
                raise InputError(
                    f"{self.url}: row {i + 1}, column {column!r}: {old[i]:g} {why} "
                    "(repairs are off: headcount.repair_counts)"
                )
            self.rows.append([int(i) + 1, self.organisations[i], column, float(old[i]), int(new[i]), rule])
        return new.astype(np.int64)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=REPAIR_COLUMNS)


def count_column(table: pd.DataFrame, column: str, url: str, repairs: _Repairs, blank: float | None) -> np.ndarray:
    """A count column as integers: blanks are `blank` (None: refused), text and absurd sizes refused, rule 1 applied."""
    raw = table[column]
    numbers = pd.to_numeric(raw, errors="coerce")
    empty = raw.map(lambda v: v is None or (isinstance(v, float) and v != v) or str(v).strip() == "")
    if blank is not None:
        numbers = numbers.where(~empty, blank)
    bad = numbers.isna() | (numbers.abs() > LARGEST_COUNT)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        reason = (
            "is not a number" if pd.isna(numbers.iloc[row]) else f"is larger than any headcount ({LARGEST_COUNT:g})"
        )
        raise InputError(f"{url}: row {row + 1}, column {column!r}: {raw.iloc[row]!r} {reason}")
    values = numbers.to_numpy(dtype=np.float64)
    return repairs.apply(column, values, np.maximum(np.rint(values), 0), "number", "is not a whole number >= 0")


def _pair_columns(columns: list[str], names: list[str], url: str) -> dict[tuple[int, int], tuple[str, bool]]:
    """Combination columns of two annotators: (a, b) -> (column, True for a&b / False for a&!b)."""
    pairs = {}
    for column in columns:
        terms = [t.strip() for t in str(column).split("&")]
        if len(terms) != 2:
            continue
        negated = [t.startswith("!") for t in terms]
        bare = [t.lstrip("!").strip() for t in terms]
        if not all(b in names for b in bare) or all(negated) or bare[0] == bare[1]:
            continue
        if negated[0]:  # !a&b is b&!a
            bare, negated = bare[::-1], negated[::-1]
        a, b = names.index(bare[0]), names.index(bare[1])
        pairs[(a, b)] = (column, not negated[1])
    return pairs


def read_count_data(
    table: pd.DataFrame,
    url: str,
    organisations: list[str],
    employees_column: str,
    profiles_column: str | None,
    names: list[str],
    repair: bool,
) -> CountData:
    """Every count the annotators `names` need, repaired by the module's rule (or refused at the first repair)."""
    repairs = _Repairs(url, organisations, repair)
    _check_denominator_columns(table, url)
    employees = count_column(table, employees_column, url, repairs, None)
    profiles = count_column(table, profiles_column, url, repairs, None) if profiles_column else employees.copy()
    empty = np.zeros((len(table), 0), np.int64)
    matches = np.stack([count_column(table, n, url, repairs, 0.0) for n in names], axis=1) if names else empty
    denominator_columns = [
        n + DENOMINATOR_SUFFIX if n + DENOMINATOR_SUFFIX in table.columns else (profiles_column or employees_column)
        for n in names
    ]
    denominators = (
        np.stack(
            [
                count_column(table, c, url, repairs, 0.0) if c.endswith(DENOMINATOR_SUFFIX) else profiles
                for c in denominator_columns
            ],
            axis=1,
        )
        if names
        else empty
    )
    pairs = _combinations(table, url, names, matches, denominator_columns, repairs)
    for j, column in enumerate(denominator_columns):
        repaired = _raised_denominator(column, denominators[:, j], matches, pairs, denominator_columns, repairs)
        denominators[:, [k for k, c in enumerate(denominator_columns) if c == column]] = repaired[:, None]
        if column == (profiles_column or employees_column):
            profiles = repaired
    largest = np.maximum(profiles, denominators.max(axis=1, initial=0))
    employees = repairs.apply(
        employees_column, employees, np.maximum(employees, largest), "employees", "is below the profiles counted"
    )
    profiles = np.minimum(np.maximum(profiles, 0), employees)
    return CountData(
        matches,
        denominators,
        denominator_columns,
        pairs,
        employees,
        profiles,
        repairs.table().drop_duplicates(["row", "column"], keep="first"),
    )


def _check_denominator_columns(table: pd.DataFrame, url: str) -> None:
    """Every `a:profiles` column belongs to an annotator column `a`."""
    for column in map(str, table.columns):
        if column.endswith(DENOMINATOR_SUFFIX) and column[: -len(DENOMINATOR_SUFFIX)] not in table.columns:
            raise InputError(
                f"{url}: column {column!r} is the denominator of an annotator "
                f"{column[: -len(DENOMINATOR_SUFFIX)]!r} that is no column of the table"
            )


def _combinations(
    table: pd.DataFrame,
    url: str,
    names: list[str],
    matches: np.ndarray,
    denominator_columns: list[str],
    repairs: _Repairs,
) -> dict[tuple[int, int], np.ndarray]:
    """(a, b) -> profiles matching both, from the combination columns, each lowered to what its marginals allow."""
    pairs = {}
    for (a, b), (column, both) in _pair_columns(list(table.columns), names, url).items():
        if denominator_columns[a] != denominator_columns[b]:
            raise InputError(
                f"{url}: column {column!r} combines annotators counted over different denominators "
                f"({denominator_columns[a]!r}, {denominator_columns[b]!r})"
            )
        given = count_column(table, column, url, repairs, 0.0)
        ceiling = np.minimum(matches[:, a], matches[:, b]) if both else matches[:, a]
        given = repairs.apply(
            column, given, np.minimum(given, ceiling), "combination", "is more than its marginal counts allow"
        )
        pairs[(a, b)] = given if both else matches[:, a] - given
    return pairs


def _raised_denominator(
    column: str,
    denominator: np.ndarray,
    matches: np.ndarray,
    pairs: dict[tuple[int, int], np.ndarray],
    denominator_columns: list[str],
    repairs: _Repairs,
) -> np.ndarray:
    """Rule 3: the denominator `column` raised to its annotators' matches and to a + b - AND of its pairs."""
    needed = matches[:, [k for k, c in enumerate(denominator_columns) if c == column]].max(axis=1)
    for (a, b), both in pairs.items():
        if denominator_columns[a] == column:
            needed = np.maximum(needed, matches[:, a] + matches[:, b] - both)
    return repairs.apply(
        column, denominator, np.maximum(denominator, needed), "denominator", "is below the matches counted over it"
    )


def count_evidence(data: CountData, chosen: list[int], space: PatternSpace, n_organisations: int):
    """The evidence of the model's annotators `chosen`: exact pattern tables where the counts determine them.

    Annotators counted over the same denominator form a group. A group of one annotator, or of two with a
    combination column, gives exact patterns (the other annotators blank); a larger or undetermined group falls
    back to the normal approximation of its marginal counts. The group with the most profiles realises the experts.
    """
    by_column: dict[str, list[int]] = {}
    for position, j in enumerate(chosen):
        by_column.setdefault(data.denominator_columns[j], []).append(position)
    digits = 3 ** np.arange(space.k)
    parts, sizes = [], []
    for positions in by_column.values():
        js = [chosen[p] for p in positions]
        n = data.denominators[:, js[0]]
        missing_code = int(2 * digits.sum() - 2 * digits[positions].sum())
        if len(js) == 1:
            m = data.matches[:, js[0]]
            cells = {missing_code + int(digits[positions[0]]): m, missing_code: n - m}
        elif len(js) == 2 and ((js[0], js[1]) in data.pairs or (js[1], js[0]) in data.pairs):
            both = data.pairs.get((js[0], js[1]), data.pairs.get((js[1], js[0])))
            a, b = data.matches[:, js[0]], data.matches[:, js[1]]
            da, db = int(digits[positions[0]]), int(digits[positions[1]])
            cells = {
                missing_code + da + db: both,
                missing_code + da: a - both,
                missing_code + db: b - both,
                missing_code: n - a - b + both,
            }
        else:
            parts.append(MarginalCountEvidence(data.matches[:, js], n, space, positions))
            sizes.append(n.sum())
            continue
        parts.append(_groups(cells, n_organisations))
        sizes.append(n.sum())
    primary = int(np.argmax(sizes))
    pattern_groups = [(i, p) for i, p in enumerate(parts) if isinstance(p, ProfileGroups)]
    others = [p for i, p in pattern_groups if i != primary]
    extra = (
        ProfileGroups(*(np.concatenate([getattr(g, f) for g in others]) for f in ("organisation", "code", "count")))
        if others
        else None
    )
    if isinstance(parts[primary], ProfileGroups):
        pattern = PatternEvidence(parts[primary], space, n_organisations, extra)
    else:
        pattern = PatternEvidence(extra, space, n_organisations) if extra is not None else None
    marginal = [p for p in parts if isinstance(p, MarginalCountEvidence)]
    if not marginal:
        return pattern
    combined = ([pattern] if pattern is not None else []) + marginal
    first = 0 if isinstance(parts[primary], ProfileGroups) else combined.index(parts[primary])
    return combined[0] if len(combined) == 1 else CombinedEvidence(combined, first)


def _groups(cells: dict[int, np.ndarray], n_organisations: int) -> ProfileGroups:
    organisation = np.concatenate([np.arange(n_organisations)] * len(cells))
    code = np.repeat(list(cells), n_organisations)
    count = np.concatenate(list(cells.values())).astype(np.int64)
    order = np.lexsort((code, organisation))  # as group_profiles orders profile rows' groups
    kept = order[count[order] > 0]
    return ProfileGroups(organisation[kept], code[kept], count[kept])
