"""Where a training run starts: fresh, resumed, or fine-tuned from a trained model (`--init-from`).

`prepare_run` turns the corpus options into what `train.train` needs: the encoded corpus (through the
id cache), the vocabulary, and the architecture or the initial model.

Fine-tuning keeps the model's vocabulary and architecture and starts a new run (step 0, fresh optimizer
state). Characters of the new corpus that the vocabulary lacks follow the unknown-character policy
(`unk`, see vocab.py), or, with `extend=True`, are added to the vocabulary by `extend_vocab`:

  - the vocabulary is re-sorted, so ids of existing characters may shift; the rows of Wx and the
    columns of Wy and entries of by are permuted with them;
  - a new character's Wx row is drawn like a fresh model's (uniform in ±1/sqrt(H), from the seed);
  - its Wy column is zero and its by entry is `logsumexp(by_old) + log(NEW_CHAR_PRIOR)`, so its logit
    is the same constant at every position: it starts improbable (about NEW_CHAR_PRIOR of the mass when
    the hidden contribution is neutral) but has gradients and can be learnt. Because that logit does not
    depend on the context, the model's distribution over the old characters, renormalised, is exactly
    the original one; only the mass moved to the new characters is taken from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import PreparedData, prepare_data
from .errors import CharrnnError
from .model import Model, ModelConfig, load_checkpoint, num_params, param_views
from .vocab import Vocab, describe_char

NEW_CHAR_PRIOR = 1e-4


def extend_vocab(model: Model, new_chars: str, seed: int) -> Model:
    """A copy of `model` whose vocabulary also has `new_chars` (initialised as the module docstring says)."""
    added = sorted(set(new_chars) - set(model.vocab.chars))
    if not added:
        return Model(model.config, model.vocab, model.flat.copy())
    vocab = Vocab(sorted(model.vocab.chars + "".join(added)))
    config = ModelConfig(len(vocab), model.config.hidden_size, model.config.num_layers, model.config.activation,
                         model.config.dtype)  # fmt: skip
    flat = np.zeros(num_params(config), dtype=model.dtype)
    old, new = model.params, param_views(flat, config)
    kept = np.array([vocab.index[c] for c in model.vocab.chars])  # old id i -> new id kept[i]
    fresh = np.array([vocab.index[c] for c in added])
    for name in ("Wu", "Wh", "bh"):
        new[name][...] = old[name]
    rng = np.random.default_rng(seed)
    bound = 1.0 / math.sqrt(config.hidden_size)
    new["Wx"][kept] = old["Wx"]
    new["Wx"][fresh] = rng.uniform(-bound, bound, size=(len(added), config.hidden_size))
    new["Wy"][:, kept] = old["Wy"]  # new columns stay zero
    new["by"][kept] = old["by"]
    by_old = old["by"].astype(np.float64)
    log_total = float(by_old.max() + np.log(np.exp(by_old - by_old.max()).sum()))
    new["by"][fresh] = log_total + math.log(NEW_CHAR_PRIOR)
    return Model(config, vocab, flat)


@dataclass(frozen=True)
class RunStart:
    """What `train.train` needs besides the TrainConfig."""

    data: PreparedData
    model_config: ModelConfig | None  # a fresh run's architecture
    init_model: Model | None  # fine-tuning: the (possibly extended) starting model
    notes: list[str]  # things the user should know (ignored options, added or skipped characters)


ARCHITECTURE_OPTIONS = {"hidden_size": "--hidden", "num_layers": "--layers", "activation": "--activation",
                        "dtype": "--dtype"}  # fmt: skip


def prepare_run(
    corpus: list[str | Path],
    architecture: dict[str, object],
    resume: str | Path | None = None,
    init_from: str | Path | None = None,
    extend: bool = False,
    unk: str = "error",
    seed: int = 1234,
    **data_options,
) -> RunStart:
    """Encode the corpus and choose the starting point.

    `architecture`: ModelConfig fields the user gave (None: not given; a fresh run uses the defaults).
    They are ignored, with a note, when resuming or fine-tuning (the checkpoint's architecture wins).
    `data_options` go to `prepare_data` (val_frac, val_file, encoding, errors, cache_dir, progress, ...).
    """
    if resume is not None and init_from is not None:
        raise CharrnnError("--resume and --init-from exclude each other (resume continues a run; init-from starts one)")
    if extend and init_from is None:
        raise CharrnnError("--extend-vocab needs --init-from (a fresh run's vocabulary is the corpus's own)")
    source = resume if resume is not None else init_from
    if source is None:
        data = prepare_data(corpus, **data_options)
        given = {name: value for name, value in architecture.items() if value is not None}
        return RunStart(data, ModelConfig(len(data.vocab), **given), None, [])
    base = load_checkpoint(source)[0]
    if base.vocab.has_end:
        raise CharrnnError(f"{source} is a documents model: train it with --documents (the split it was trained with)")
    verb = "resuming" if resume is not None else "fine-tuning"
    notes = [
        f"{ARCHITECTURE_OPTIONS[name]} {value} ignored: {verb} keeps the model's "
        f"{ARCHITECTURE_OPTIONS[name].lstrip('-')} ({getattr(base.config, name)})"
        for name, value in architecture.items()
        if value is not None and value != getattr(base.config, name)
    ]
    extended: list[Model] = []

    def vocab_for(chars: str) -> Vocab:
        extended.append(extend_vocab(base, chars, seed))
        return extended[0].vocab

    data = prepare_data(corpus, vocab=vocab_for if extend else base.vocab, unk=unk, **data_options)
    model = extended[0] if extend else base
    added = "".join(c for c in model.vocab.chars if c not in base.vocab)
    if added:
        names = ", ".join(describe_char(c) for c in added)
        notes.append(f"added {len(added)} character(s) to the vocabulary: {names}")
    if data.unknown.counts:
        action = "skipped" if unk == "skip" else f"mapped to {describe_char(unk)}"
        notes.append(f"{data.unknown.total} character(s) not in the vocabulary {action}: {data.unknown.summary()}")
    if init_from is not None:
        notes.append(f"fine-tuning from {init_from}: {base.config.num_layers} x {base.config.hidden_size} "
                     f"{base.config.activation}, vocabulary {len(base.vocab)} -> {len(model.vocab)}")  # fmt: skip
    return RunStart(data, None, model if init_from is not None else None, notes)
