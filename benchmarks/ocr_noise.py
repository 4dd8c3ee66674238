"""OCR-like noise for benchmarks/rescoring.py: a confusion table, n-best lists of distorted lines, and a
text with a given rate of random confusions.

The table holds the confusions OCR engines are known for, each in both directions where both happen:
rn <-> m, cl <-> d, l <-> 1 <-> I, O <-> 0, e <-> c, h <-> b, vv <-> w, a dropped or doubled space, and
ligature splits (fi, fl, ff read as two glyphs with a gap: "f i") and ligature glyphs (fi read as the
single character U+FB01, which a model trained on plain text does not know).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFUSIONS: list[tuple[str, str, str]] = [  # (seen, read as, kind)
    ("rn", "m", "rn->m"), ("m", "rn", "m->rn"),
    ("cl", "d", "cl->d"), ("d", "cl", "d->cl"),
    ("l", "1", "l->1"), ("1", "l", "1->l"), ("l", "I", "l->I"), ("I", "l", "I->l"), ("1", "I", "1->I"),
    ("I", "1", "I->1"),
    ("O", "0", "O->0"), ("0", "O", "0->O"),
    ("e", "c", "e->c"), ("c", "e", "c->e"),
    ("h", "b", "h->b"), ("b", "h", "b->h"),
    ("w", "vv", "w->vv"), ("vv", "w", "vv->w"),
    (" ", "", "dropped space"), (" ", "  ", "doubled space"),
    ("fi", "f i", "ligature split"), ("fl", "f l", "ligature split"), ("ff", "f f", "ligature split"),
    ("fi", "\ufb01", "ligature glyph"), ("fl", "\ufb02", "ligature glyph"),
]  # fmt: skip


@dataclass(frozen=True)
class Edit:
    start: int  # where the replacement starts in the edited text
    end: int  # where it ends (exclusive)
    kind: str


def _sites(text: str) -> list[tuple[int, int]]:
    """(confusion index, position) of every place a confusion applies."""
    out = []
    for c, (seen, _, _) in enumerate(CONFUSIONS):
        start = text.find(seen)
        while start >= 0:
            out.append((c, start))
            start = text.find(seen, start + 1)
    return out


def distort(text: str, edits: int, rng: np.random.Generator) -> tuple[str, list[str]] | None:
    """`text` with `edits` confusions applied one after another (kind chosen uniformly among the kinds
    that apply, then a place uniformly), and their kinds; None when none applies."""
    kinds = []
    for _ in range(edits):
        sites = _sites(text)
        if not sites:
            return None
        applicable = sorted({CONFUSIONS[c][2] for c, _ in sites})
        kind = applicable[rng.integers(len(applicable))]
        choices = [(c, p) for c, p in sites if CONFUSIONS[c][2] == kind]
        c, p = choices[rng.integers(len(choices))]
        seen, read, _ = CONFUSIONS[c]
        text = text[:p] + read + text[p + len(seen) :]
        kinds.append(kind)
    return text, kinds


def nbest_list(truth: str, size: int, rng: np.random.Generator, tries: int = 200) -> tuple[list[str], int, list]:
    """`size` distinct candidates: the truth and size - 1 distortions with 1-3 edits each, shuffled.
    Returns (candidates, index of the truth, the kinds of each candidate's edits); raises ValueError when
    the line does not allow enough distinct distortions."""
    seen = {truth}
    candidates, kinds = [truth], [[]]
    for _ in range(tries):
        if len(candidates) == size:
            break
        made = distort(truth, int(rng.integers(1, 4)), rng)
        if made is not None and made[0] not in seen:
            seen.add(made[0])
            candidates.append(made[0])
            kinds.append(made[1])
    if len(candidates) < size:
        raise ValueError("too few distinct distortions")
    order = rng.permutation(size)
    return [candidates[i] for i in order], int(np.flatnonzero(order == 0)[0]), [kinds[i] for i in order]


def corrupt(text: str, rate: float, rng: np.random.Generator) -> tuple[str, list[Edit]]:
    """`text` with about rate x len(text) confusions at random places (never touching a newline or each
    other), and where each one is in the corrupted text."""
    sites = [(c, p) for c, p in _sites(text) if "\n" not in CONFUSIONS[c][0]]
    wanted = int(round(rate * len(text)))
    picked, used = [], np.zeros(len(text) + 2, dtype=bool)
    for index in rng.permutation(len(sites)):
        c, p = sites[index]
        span = len(CONFUSIONS[c][0])
        if not used[max(p - 1, 0) : p + span + 1].any():  # a character of room on each side
            used[p : p + span] = True
            picked.append((p, c))
            if len(picked) == wanted:
                break
    out, edits, shift, last = [], [], 0, 0
    for p, c in sorted(picked):
        seen, read, kind = CONFUSIONS[c]
        out.append(text[last:p] + read)
        edits.append(Edit(p + shift, p + shift + len(read), kind))
        shift += len(read) - len(seen)
        last = p + len(seen)
    out.append(text[last:])
    return "".join(out), edits


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (unit costs), one row at a time."""
    if a == b:
        return 0
    previous = np.arange(len(b) + 1)
    for i, ca in enumerate(a, start=1):
        current = np.empty_like(previous)
        current[0] = i
        costs = previous[:-1] + np.array([ca != cb for cb in b], dtype=np.int64)
        for j in range(1, len(b) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, costs[j - 1])
        previous = current
    return int(previous[-1])
