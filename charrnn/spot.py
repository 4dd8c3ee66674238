"""Spotting characters that are probably wrong (OCR misreadings, typos), with a suggested correction.

The text is read as after a newline (so its first character is scored too), in one stream, every
character predicted from everything before it. A character is *surprising* when its surprisal is at
least `min_surprisal` bits. An error shows at the wrong character or at the next one (after a dropped
character, the one after the gap is the surprise), so for every surprising position i the sites i - 1
and i are tried, each with every single edit the model finds plausible there:

    substitute  the site's character by one of the `alternatives` most likely characters at that point
    delete      the site's character
    insert      one of those characters before the site's character

The *gain* of an edit is how much more likely it makes the text: ln p of the edited window minus ln p of
the original one, in bits, where the window is the site and the `window` characters after it, both
scored from the state before the site. The window ends at the same original character in both, so the
comparison is p(text with the edit) / p(text) restricted to what the edit can change within the window.
A site is reported with its best edit when the gain is at least `min_gain` bits. An error makes the
characters after it surprising too, and an edit there may only compensate for it, so edits are taken
greedily, the highest gain first, with disjoint windows; then the text is corrected and re-read near
those edits (up to ROUNDS rounds), which finds a second error close to the first, and drops the
compensating edits that the corrected text no longer needs. In each round all edits of all sites
are scored as one batch of short sequences, each from its own state (`batch.score_packed`).

Edits stay within lines: a newline is never deleted, replaced or inserted. A character the model does
not know is always a site: its surprisal is the unknown-character penalty of `linescore` (by default
the surprisal of the least likely known character in its context), it is dropped from the context, and
deleting it gains exactly that penalty, so it is reported when the penalty reaches `min_gain` (or a
known character fits better).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .batch import score_packed
from .errors import CharrnnError
from .linescore import code_table, worst_case_bits
from .model import Model
from .score import score_ids
from .vocab import describe_char

LN2 = math.log(2.0)
SEPARATION = 2  # characters: a later round never edits this close to an earlier edit
ROUNDS = 3  # rounds of edits; each re-reads the text near the previous round's edits
STATE_CHUNK = 4096  # positions whose hidden states are held at once while gathering


@dataclass(frozen=True)
class Suspect:
    """A probably wrong character and the edit that fixes it best. Positions refer to the input text."""

    position: int  # 0-based offset of the site's character in the text
    line: int  # 1-based
    column: int  # 1-based, in characters
    char: str  # the site's character
    edit: str  # "substitute", "delete" or "insert" (before `char`)
    replacement: str  # the new character ("" for delete)
    gain_bits: float  # how much more likely the window becomes
    surprisal_bits: float  # surprisal of the site's character in the original text

    def describe(self) -> str:
        """'e' -> 'c', delete 'x', insert 'a' before 'b'."""
        if self.edit == "substitute":
            return f"{describe_char(self.char)} -> {describe_char(self.replacement)}"
        if self.edit == "delete":
            return f"delete {describe_char(self.char)}"
        return f"insert {describe_char(self.replacement)} before {describe_char(self.char)}"

    def record(self) -> dict:
        """What `charrnn spot --json` prints for it."""
        return {**asdict(self), "suggestion": self.describe()}


def apply_fixes(text: str, suspects: list[Suspect]) -> str:
    """The text with every suspect's edit applied (suspects are at distinct positions)."""
    out = list(text)
    for s in sorted(suspects, key=lambda s: -s.position):
        out[s.position : s.position + (0 if s.edit == "insert" else 1)] = [s.replacement] if s.replacement else []
    return "".join(out)


def _states(model: Model, ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """(L, W, H) the state after the first wanted[w] ids of `ids` (wanted >= 0), chunk by chunk."""
    L, H = model.config.num_layers, model.config.hidden_size
    out = np.zeros((L, wanted.size, H), dtype=model.dtype)
    state = model.initial_state(1)
    for start in range(0, ids.size, STATE_CHUNK):
        chunk = ids[start : start + STATE_CHUNK]
        hidden = model.hidden_states(chunk, state)  # (L, T, 1, H): after each id
        inside = np.flatnonzero((wanted > start) & (wanted <= start + chunk.size))
        out[:, inside] = hidden[:, wanted[inside] - start - 1, 0]
        state = np.ascontiguousarray(hidden[:, -1])
    return out


def spot(model: Model, text: str, min_surprisal: float = 10.0, min_gain: float = 12.0, window: int = 10,
         alternatives: int = 6, unk_penalty: float | None = None) -> list[Suspect]:  # fmt: skip
    """Probably wrong characters of `text` with their best single-edit fix, in text order (method in
    the module docstring). Thresholds in bits; `window` in characters; `unk_penalty` in bits or None."""
    for name, value in (("--min-surprisal", min_surprisal), ("--min-gain", min_gain)):
        if not math.isfinite(value) or value < 0:
            raise CharrnnError(f"{name} must be a finite number of bits >= 0, got {value}")
    if window < 1 or alternatives < 1:
        raise CharrnnError(f"--window and --alternatives must be >= 1, got {window} and {alternatives}")
    if unk_penalty is not None and not (math.isfinite(unk_penalty) and unk_penalty > 0):
        raise CharrnnError(f"--unk-penalty must be a positive number of bits, got {unk_penalty}")
    if "\n" not in model.vocab:
        raise CharrnnError("the model's vocabulary has no newline: it cannot read lines")
    current, origin, accepted = list(text), np.arange(len(text)), []
    focus = None
    for _ in range(ROUNDS):
        reports = _candidates(model, "".join(current), min_surprisal, min_gain, window, alternatives, unk_penalty,
                              focus)  # fmt: skip
        chosen: list[tuple] = []  # the strongest first, windows [p, p + window] disjoint
        for report in sorted(reports, key=lambda r: (-r[0], r[1])):
            if all(abs(report[1] - other[1]) > window for other in chosen):
                chosen.append(report)
        new = []
        for gain, position, edit, replacement, surprisal in chosen:
            o = int(origin[position])
            if all(abs(o - s.position) >= SEPARATION for s in accepted):  # untouched by an earlier round
                new.append((position, Suspect(o, 0, 0, text[o], edit, replacement, gain, surprisal)))
        if not new:
            break
        for position, s in sorted(new, key=lambda n: -n[0]):
            if s.edit == "substitute":
                current[position] = s.replacement
            elif s.edit == "delete":
                del current[position]
                origin = np.delete(origin, position)
            else:
                current.insert(position, s.replacement)
                origin = np.insert(origin, position, origin[position] if position < origin.size else len(text))
        accepted += [s for _, s in new]
        edited = np.sort([s.position for _, s in new])
        nearest = np.minimum(np.abs(origin - edited[np.clip(np.searchsorted(edited, origin), 0, edited.size - 1)]),
                             np.abs(origin - edited[np.clip(np.searchsorted(edited, origin) - 1, 0, edited.size - 1)]))
        focus = nearest <= window + 1  # only sites near this round's edits can change their verdict
    line_starts = np.concatenate(([0], np.flatnonzero(np.frombuffer(text.encode("utf-32-le"), np.uint32) == 10) + 1))
    suspects = []
    for s in sorted(accepted, key=lambda s: s.position):
        line = int(np.searchsorted(line_starts, s.position, side="right"))
        suspects.append(Suspect(s.position, line, s.position - int(line_starts[line - 1]) + 1, s.char, s.edit,
                                s.replacement, s.gain_bits, s.surprisal_bits))  # fmt: skip
    return suspects


def _candidates(model: Model, text: str, min_surprisal: float, min_gain: float, window: int, alternatives: int,
                unk_penalty: float | None, focus: np.ndarray | None) -> list[tuple]:  # fmt: skip
    """Every site's best edit with a gain >= min_gain: (gain bits, position, edit, replacement, surprisal
    bits), sites restricted to text positions where `focus` (len(text),) is true when given."""
    newline = model.vocab.index["\n"]
    if not text:
        return []
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    table = code_table(model)
    found = np.where(codes < table.size, table[np.minimum(codes, table.size - 1)], -1)
    known = np.flatnonzero(found >= 0)
    z = np.concatenate(([newline], found[known]))  # the text as the model reads it; z[0] only conditions
    where = np.concatenate(([-1], known))  # text position of z[i]
    log_probs, top_ids, _ = score_ids(model, z, top=min(alternatives + 1, model.config.vocab_size))
    surprisal = np.concatenate(([0.0], -log_probs / LN2))  # of z[i]
    unknown_at = np.flatnonzero(found < 0)
    unknown_k = np.searchsorted(known, unknown_at) + 1  # known ids (with the leading newline) before it
    penalties = np.full(unknown_at.size, float(unk_penalty or 0.0))
    if unk_penalty is None and unknown_at.size:
        penalties = worst_case_bits(model, _states(model, z, unknown_k))
    # sites: (index j in z of the site's character, or -(u + 1) for unknown character u)
    flagged = np.flatnonzero(surprisal >= min_surprisal)
    sites = sorted({int(j) for j in np.concatenate((flagged - 1, flagged)) if j >= 1 and z[j] != newline}
                   | {-(u + 1) for u in range(unknown_at.size)})  # fmt: skip
    if focus is not None:
        sites = [j for j in sites if focus[where[j] if j >= 1 else unknown_at[-j - 1]]]
    N = z.size
    flat: list[int] = []
    offsets, lengths, state_at, meta = [], [], [], []  # meta: (site, edit, replacement id, baseline nats)

    def add(site: int, edit: str, replacement: int, sequence: list[int], before: int, base: float) -> None:
        offsets.append(len(flat))
        lengths.append(len(sequence))
        flat.extend(sequence)
        state_at.append(before)
        meta.append((site, edit, replacement, base))

    for site in sites:
        if site >= 1:
            j, end = site, min(site + window, N - 1)  # the window: z[j .. end]
            base = float(log_probs[j - 1 : end].sum())
            context, rest, after = int(z[j - 1]), z[j + 1 : end + 1].tolist(), z[j : end + 1].tolist()
            options = [int(c) for c in top_ids[j - 1] if c != newline]
            for c in options:
                if c != z[j]:
                    add(site, "substitute", c, [context, c, *rest], j - 1, base)
                add(site, "insert", c, [context, c, *after], j - 1, base)
            add(site, "delete", -1, [context, *rest], j - 1, base)
        else:
            u = -site - 1
            k = int(unknown_k[u])  # the unknown character stands before z[k] (or at the end)
            end = min(k + window - 1, N - 1)
            base = float(log_probs[k - 1 : end].sum()) - penalties[u] * LN2
            context, after = int(z[k - 1]), z[k : end + 1].tolist()
            for c in (int(c) for c in top_ids[k - 1] if c != newline):
                add(site, "substitute", c, [context, c, *after], k - 1, base)
            add(site, "delete", -1, [context, *after], k - 1, base)
    if not meta:
        return []
    states = _states(model, z, np.array(state_at, dtype=np.int64))
    out, out_starts, _ = score_packed(model, np.array(flat, dtype=np.int64), np.array(offsets), np.array(lengths),
                                      states)  # fmt: skip
    sums = np.add.reduceat(np.append(out, 0.0), out_starts[:-1]) * (np.diff(out_starts) > 0)
    best: dict[int, tuple[float, str, int]] = {}
    for (site, edit, replacement, base), total in zip(meta, sums.tolist(), strict=True):
        gain = (total - base) / LN2
        if site not in best or gain > best[site][0]:
            best[site] = (gain, edit, replacement)
    chars = model.vocab.chars
    reports = []
    for site, (gain, edit, replacement) in best.items():
        if gain < min_gain:
            continue
        if site >= 1:
            position, site_surprisal = int(where[site]), float(surprisal[site])
        else:
            position, site_surprisal = int(unknown_at[-site - 1]), float(penalties[-site - 1])
        reports.append((gain, position, edit, "" if replacement < 0 else chars[replacement], site_surprisal))
    return reports
