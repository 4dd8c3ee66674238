"""Using a documents model (trained with `--documents`, charrnn/documents.py): whole documents sampled,
documents scored one by one, documents attributed to the model that explains each best.

Sampling (`sample_documents`): each sample is one document, from the document start (the end symbol as
input, then the prime), ending when the model draws the end symbol; `max_length` new characters cap a
runaway (such a sample is marked incomplete). Samples are drawn in rounds of a batch each, round r
seeded by (seed, r), so the same seed gives the same documents. An empty document is never given;
`unique` drops a document already given; `novel` drops any document of the training corpus (training
or validation split), recognised by the 64-bit hashes the checkpoint keeps (`KnownDocuments`). Each
sample's `status` says where it is from: "new", "in-train" or "in-validation".

Scoring (`score_documents`): each document from a zero state, as [END, d1 .. dn, END]: n + 1 predictions
(the end symbol counted, as training's loss), through `batch.score_sequences`, so a document's score
does not depend on the documents scored with it (beyond float rounding).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import generate
from .documents import document_hashes, separator_text, with_end
from .errors import CharrnnError
from .model import Model, load_checkpoint
from .score import Verdict, keep_only, shared_vocabulary
from .vocab import UnknownReport

LN2 = math.log(2.0)
ROUND_SIZE = 64  # samples drawn together while filtering for --unique / --novel
MAX_DRAWS_PER_DOCUMENT = 50  # --unique / --novel give up after this many draws per document asked for


@dataclass(frozen=True)
class KnownDocuments:
    """Which documents a model was trained and validated on: sorted 64-bit hashes (documents.py)."""

    train: np.ndarray
    val: np.ndarray

    def status(self, text: str) -> str:
        """'in-train', 'in-validation' or 'new'."""
        key = document_hashes([text])[0]
        for name, hashes in (("in-train", self.train), ("in-validation", self.val)):
            at = int(np.searchsorted(hashes, key))
            if at < hashes.size and hashes[at] == key:
                return name
        return "new"


@dataclass(frozen=True)
class DocumentsModel:
    """A documents model and what its checkpoint says about its corpus."""

    model: Model
    split: str  # how its corpus was split (documents.parse_split)
    known: KnownDocuments | None
    longest: int | None  # characters of the longest training document


def load_documents_model(path: str | Path) -> DocumentsModel:
    """A documents model with its split and known documents; CharrnnError for any other checkpoint."""
    model, meta, arrays = load_checkpoint(path)
    if not model.vocab.has_end:
        raise CharrnnError(f"{path} is not a documents model (it was trained without --documents)")
    info = meta.get("documents") or {}
    known = None
    if "documents.train" in arrays and "documents.val" in arrays:
        known = KnownDocuments(arrays["documents.train"].astype(np.uint64), arrays["documents.val"].astype(np.uint64))
    return DocumentsModel(model, info.get("split", "lines"), known, info.get("longest"))


def is_documents_model(path: str | Path) -> bool:
    return load_checkpoint(path)[0].vocab.has_end


@dataclass(frozen=True)
class DocumentSample:
    index: int
    text: str  # the document (the prime included)
    complete: bool  # ended with the end symbol (False: cut at max_length)
    log_prob_model: float | None  # nats, of the generated characters and the end symbol (None when cut)
    status: str | None  # "new" | "in-train" | "in-validation" (None: the checkpoint keeps no hashes)

    def to_dict(self) -> dict:
        return {"document": self.index, "text": self.text, "length": len(self.text), "complete": self.complete,
                "status": self.status, "log_likelihood_nats": self.log_prob_model}  # fmt: skip


@dataclass
class SampleStats:
    draws: int = 0  # documents drawn
    empty: int = 0  # drawn empty (the end symbol first): never a document, dropped
    repeated: int = 0  # dropped by --unique
    known: int = 0  # dropped by --novel
    incomplete: int = 0  # given although cut at max_length


def sample_documents(documents: DocumentsModel, count: int, max_length: int, temperature: float = 1.0,
                     top_k: int = 0, top_p: float = 1.0, greedy: bool = False, prime: str = "",
                     seed: int | None = None, unique: bool = False, novel: bool = False, unk: str = "error",
                     stats: SampleStats | None = None) -> Iterator[DocumentSample]:  # fmt: skip
    """`count` documents, yielded as they are accepted (module docstring). `stats` (optional) collects
    what was drawn and dropped; fewer than `count` come out when --unique/--novel reject
    MAX_DRAWS_PER_DOCUMENT times `count` draws. The text of a document includes the prime; it is not
    stripped (a trained model ends its documents where its corpus did)."""
    if count < 1:
        raise CharrnnError(f"-n must be >= 1 (documents to sample), got {count}")
    if max_length < 1:
        raise CharrnnError(f"--max-length must be >= 1, got {max_length}")
    if novel and documents.known is None:
        raise CharrnnError("--novel needs the checkpoint's document hashes, and this one has none")
    stats = stats if stats is not None else SampleStats()
    seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1) if seed is None else seed
    seen: set[str] = set()
    accepted, round_index = 0, 0
    while accepted < count and stats.draws < MAX_DRAWS_PER_DOCUMENT * count:
        size = count - accepted if not (unique or novel or stats.empty) else max(count - accepted, ROUND_SIZE)
        round_seed = seed if round_index == 0 else int(np.random.SeedSequence([seed, round_index]).generate_state(
            1, np.uint64)[0] >> 1)  # fmt: skip
        sampler = generate.sample(documents.model, max_length + 1, temperature, top_k, top_p, greedy, prime, size,
                                  round_seed, None, unk)  # fmt: skip
        for result in sampler.run():
            stats.draws += 1
            # drawn: up to max_length + 1 ids, so a document of max_length characters can still end
            text = prime + (result.text if result.stopped else result.text[:max_length])
            status = documents.known.status(text) if documents.known is not None else None
            if not text.strip():  # as no corpus document is (they are stripped, empty ones skipped)
                stats.empty += 1
                continue
            if unique and text in seen:
                stats.repeated += 1
                continue
            if novel and status != "new":
                stats.known += 1
                continue
            seen.add(text)
            stats.incomplete += not result.stopped
            log_prob = result.log_prob_model if result.stopped else None
            yield DocumentSample(accepted, text, result.stopped, log_prob, status)
            accepted += 1
            if accepted == count:
                return
        round_index += 1


def default_max_length(documents: DocumentsModel) -> int:
    """Twice the longest training document (at least 64 characters), or 1000 when unknown."""
    return 1000 if not documents.longest else max(64, 2 * int(documents.longest))


# ---- scoring ----


@dataclass(frozen=True)
class DocumentScore:
    index: int
    text: str
    predictions: int  # characters + 1 (the end symbol)
    log_likelihood: float  # nats

    @property
    def bits_per_char(self) -> float:
        return -self.log_likelihood / self.predictions / LN2

    def to_dict(self) -> dict:
        return {"document": self.index, "text": self.text, "characters": self.predictions - 1,
                "predictions": self.predictions, "log_likelihood_nats": self.log_likelihood,
                "bits_per_char": self.bits_per_char}  # fmt: skip


def score_documents(model: Model, texts: list[str], unk: str = "error", where: str = "text"
                    ) -> tuple[list[DocumentScore], UnknownReport]:  # fmt: skip
    """Each document's log-likelihood under a documents model (module docstring), and the characters the
    vocabulary lacks (`unk` policy: error, skip or a mapped character)."""
    from .batch import score_sequences

    end = model.vocab.end_id
    if end is None:
        raise CharrnnError("the model is not a documents model (it was trained without --documents)")
    if not texts:
        raise CharrnnError(f"{where} has no documents to score")
    encoded, counts = [], {}  # unknown character -> (occurrences, first document, 0-based)
    for index, text in enumerate(texts):
        ids, report = model.vocab.encode_with_report(text, unk=unk, where=f"{where}, document {index + 1}")
        encoded.append(ids)
        for char, (n, _) in report.counts.items():
            total, first = counts.get(char, (0, index))
            counts[char] = (total + n, first)
    log_probs = score_sequences(model, [with_end(ids, end) for ids in encoded])
    pairs = enumerate(zip(texts, log_probs, strict=True))
    scores = [DocumentScore(i, text, lp.size, float(lp.sum())) for i, (text, lp) in pairs]
    return scores, UnknownReport(counts, unk)


def score_summary(scores: list[DocumentScore]) -> dict:
    """Totals over documents: per character (end symbols counted) and per document."""
    total = sum(s.log_likelihood for s in scores)
    predictions = sum(s.predictions for s in scores)
    return {"documents": len(scores), "characters": predictions - len(scores), "predictions": predictions,
            "log_likelihood_nats": total, "nats_per_char": -total / predictions,
            "bits_per_char": -total / predictions / LN2, "nats_per_document": -total / len(scores)}  # fmt: skip


# ---- attribution ----


@dataclass(frozen=True)
class DocumentVerdicts:
    names: list[str]
    texts: list[str]
    verdicts: list[Verdict]  # per document
    whole: Verdict  # all documents together
    excluded: dict[str, int]  # characters outside the vocabulary every model shares, removed

    def to_dict(self) -> dict:
        def scores(verdict: Verdict) -> dict:
            return {name: {"log_likelihood_nats": float(ll), "bits_per_char": float(bpc), "posterior": float(p)}
                    for name, ll, bpc, p in zip(self.names, verdict.log_likelihoods, verdict.bits_per_char,
                                                verdict.posterior, strict=True)}  # fmt: skip

        wins = {name: sum(v.best == i for v in self.verdicts) for i, name in enumerate(self.names)}
        return {"best": self.names[self.whole.best], "documents_won": wins, "models": scores(self.whole),
                "excluded": dict(sorted(self.excluded.items())),
                "documents": [{"document": i, "text": t, "best": self.names[v.best], "margin_bits": v.margin_bits,
                               "models": scores(v)} for i, (t, v) in enumerate(zip(self.texts, self.verdicts,
                                                                                      strict=True))]}  # fmt: skip


def attribute_documents(texts: list[str], models: dict[str, Model]) -> DocumentVerdicts:
    """A verdict per document: which documents model explains it best (its log-likelihood with the end
    symbol, from a zero state), and the verdict over all documents together. Characters outside the
    vocabulary every model shares are removed from the documents, for every model, and reported."""
    from .batch import score_sequences

    if not models:
        raise CharrnnError("attribute needs at least one model (-m)")
    if not texts:
        raise CharrnnError("no documents to attribute")
    for name, model in models.items():
        if not model.vocab.has_end:
            raise CharrnnError(f"model {name} is not a documents model (trained without --documents)")
    shared = shared_vocabulary(list(models.values()))
    kept, excluded = [], {}
    for text in texts:
        piece, removed = keep_only(text, shared)
        kept.append(piece)
        for char, n in removed.items():
            excluded[char] = excluded.get(char, 0) + n
    table = np.array([[float(lp.sum()) for lp in score_sequences(m, [with_end(m.vocab.encode(t), m.vocab.end_id)
                                                                      for t in kept])]
                      for m in models.values()])  # (M, D)  # fmt: skip
    verdicts = [Verdict(len(t) + 1, table[:, i]) for i, t in enumerate(kept)]
    whole = Verdict(sum(len(t) + 1 for t in kept), table.sum(axis=1))
    return DocumentVerdicts(list(models), texts, verdicts, whole, excluded)


def join_documents(texts: list[str], split: str) -> str:
    """Documents written in the corpus's own format (what `charrnn sample` prints)."""
    separator = separator_text(split)
    return "".join(text + separator for text in texts)


@dataclass(frozen=True)
class DocumentPreview:
    """Documents shown while training (`train(on_sample=...)`): `count` of them per temperature, seeded by
    (seed, step) as preview.SamplePreview, written in the corpus's format."""

    count: int
    temperatures: tuple[float, ...]
    seed: int
    split: str
    max_length: int

    def __call__(self, model: Model, step: int) -> list[tuple[float, str]]:
        documents = DocumentsModel(model, self.split, None, None)
        out = []
        for index, temperature in enumerate(self.temperatures):
            seed = int(np.random.SeedSequence([self.seed, step, index]).generate_state(1)[0])
            texts = [d.text for d in sample_documents(documents, self.count, self.max_length, temperature, seed=seed)]
            out.append((temperature, join_documents(texts, self.split).rstrip("\n")))
        return out
