"""Keyword selection by similarity to the document: KeyBERT's MMR and plain top-n, vectorised and screened.

Both functions pick the same candidates as keybert._mmr.mmr and KeyBERT's
cosine top-n on the same vectors, in the same order, but:

- MMR keeps a running "max similarity to the selected keywords" per candidate
  (n x 1 per step) instead of re-slicing an n x n similarity matrix each step,
  which for a long CV (4,000 candidates) costs more than the embeddings.
- Screening: `vectors` may be cheap approximations (bfloat16 inference) whose
  similarity to any unit vector is within `margin` of the exact one
  (|(a - e) . u| <= |a - e| by Cauchy-Schwarz). A candidate is embedded exactly
  (`exact(indices)`) only when its approximate score comes within `margin` of
  the best lower bound, i.e. when it could be the pick. Every pick and every
  returned similarity is then exact, and all the other candidates never need
  the exact model. With margin >= the approximation's error, the selection is
  the one exact vectors would give. The selections of a shard's CVs run side
  by side (run_together), so their exact embeddings go in a few large batches.

Inputs and outputs are numpy: unit vectors in, candidate indices and their
similarities to the document out, best first.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np

Exact = Callable[[np.ndarray], np.ndarray]  # candidate indices -> their exact unit vectors


class _Screened:
    """Candidate vectors, exact where refined, and their similarity to the document."""

    def __init__(self, doc_vector: np.ndarray, vectors: np.ndarray, screened: bool, margin: float):
        self.doc = np.asarray(doc_vector, dtype=np.float32).ravel()
        self.vectors = np.array(vectors, dtype=np.float32)
        self.is_exact = np.full(len(self.vectors), not screened)
        self.margin = margin if screened else 0.0
        self.doc_similarity = self.vectors @ self.doc

    def refine(self, indices: np.ndarray, exact_vectors: np.ndarray) -> None:
        self.vectors[indices] = exact_vectors
        self.is_exact[indices] = True
        self.doc_similarity[indices] = self.vectors[indices] @ self.doc

    def uncertainty(self) -> np.ndarray:
        """How far each candidate's score may be from its exact one."""
        return np.where(self.is_exact, 0.0, self.margin).astype(np.float32)


def mmr(
    doc_vector: np.ndarray,
    vectors: np.ndarray,
    top_n: int,
    diversity: float,
    exact: Exact | None = None,
    margin: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximal Marginal Relevance: (1 - diversity) * sim(doc) - diversity * max sim(selected)."""
    return _run_alone(mmr_selection(doc_vector, vectors, top_n, diversity, exact is not None, margin), exact)


Selection = Generator[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]


def run_together(
    selections: list[Selection], exact_many: Callable[[list[tuple[int, np.ndarray]]], list[np.ndarray]]
) -> list:
    """Advance many selections (one per CV) in rounds, embedding all of a round's requests in one call.

    A selection yields the candidate indices it needs exact vectors for and is
    sent them back; `exact_many` gets (selection number, indices) pairs. One
    model call per round instead of one per request keeps the batches large.
    """
    results: list = [None] * len(selections)
    requests: dict[int, np.ndarray] = {}
    for number, selection in enumerate(selections):
        _advance(selection, None, number, requests, results)
    while requests:
        asked = list(requests.items())
        requests = {}
        for (number, _), vectors in zip(asked, exact_many(asked), strict=True):
            _advance(selections[number], vectors, number, requests, results)
    return results


def _advance(selection: Selection, vectors, number: int, requests: dict, results: list) -> None:
    try:
        requests[number] = selection.send(vectors)
    except StopIteration as done:
        results[number] = done.value


def _run_alone(selection: Selection, exact: Exact | None) -> tuple[np.ndarray, np.ndarray]:
    return run_together([selection], lambda asked: [exact(indices) for _, indices in asked])[0]


def mmr_selection(doc_vector, vectors, top_n: int, diversity: float, screened: bool, margin: float) -> Selection:
    """mmr() as a generator: yields the indices it needs exact vectors for, receives them."""
    state = _Screened(doc_vector, vectors, screened, margin)
    n = len(state.vectors)
    available = np.ones(n, dtype=bool)
    max_selected_similarity = np.zeros(n, dtype=np.float32)
    selected: list[int] = []
    for _ in range(min(top_n, n)):
        while True:
            if selected:
                score = (1 - diversity) * state.doc_similarity - diversity * max_selected_similarity
            else:  # KeyBERT starts from the most similar candidate, undiluted
                score = state.doc_similarity.copy()
            score[~available] = -np.inf
            best = int(np.argmax(score))
            slack = state.uncertainty()
            could_win = available & ~state.is_exact & (score + slack >= score[best] - slack[best])
            if not could_win.any():
                break
            refined = np.flatnonzero(could_win)
            state.refine(refined, (yield refined))
            if selected:
                chosen = state.vectors[selected]
                max_selected_similarity[refined] = (state.vectors[refined] @ chosen.T).max(axis=1)
        new_similarity = state.vectors @ state.vectors[best]
        max_selected_similarity = (
            new_similarity if not selected else np.maximum(max_selected_similarity, new_similarity)
        )
        selected.append(best)
        available[best] = False
    return _best_first(np.asarray(selected, dtype=np.int64), state.doc_similarity)


def top_similar_selection(doc_vector, vectors, top_n: int, screened: bool, margin: float) -> Selection:
    """The top_n candidates most similar to the document (KeyBERT without MMR), as a generator like mmr_selection."""
    state = _Screened(doc_vector, vectors, screened, margin)
    n = len(state.vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if screened:
        # at least top_n candidates score >= the n-th approximate score - margin, so nothing below can enter
        nth = np.partition(state.doc_similarity, n - min(top_n, n))[n - min(top_n, n)]
        refined = np.flatnonzero(state.doc_similarity + 2 * margin >= nth)
        state.refine(refined, (yield refined))
        state.doc_similarity[~state.is_exact] = -np.inf
    chosen = np.argsort(state.doc_similarity)[-top_n:][::-1]  # KeyBERT's ordering, ties included
    return chosen.astype(np.int64), state.doc_similarity[chosen]


def _best_first(selected: np.ndarray, doc_similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KeyBERT sorts the picks by their rounded similarity, stable among equals."""
    similarity = doc_similarity[selected]
    order = sorted(range(len(selected)), key=lambda i: round(float(similarity[i]), 4), reverse=True)
    return selected[order], similarity[order]
