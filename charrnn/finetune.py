"""Fine-tuning specifics: extending a trained model's vocabulary (`--init-from M --extend-vocab`).

Fine-tuning keeps the model's vocabulary and architecture and starts a new run (step 0, fresh optimizer
state); where every run starts (fresh, resumed, fine-tuned) is runstart.py's. Characters of the new
corpus that the vocabulary lacks follow the unknown-character policy (`unk`, see vocab.py), or, with
`--extend-vocab`, are added to the vocabulary by `extend_vocab`:

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

import numpy as np

from .model import Model, ModelConfig, num_params, param_views
from .vocab import Vocab

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
