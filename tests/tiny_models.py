"""Small self-made models and texts for the sampling, scoring and attribution tests (no downloads)."""

import numpy as np

from charrnn.model import Model, ModelConfig, save_checkpoint
from charrnn.vocab import Vocab


def random_model(chars="abcdefgh\n", hidden=8, layers=1, activation="tanh", dtype="float64", seed=0, scale=0.6):
    """Random (not initial) weights over the vocabulary `chars`."""
    rng = np.random.default_rng(seed)
    vocab = Vocab(sorted(chars))
    model = Model.initialize(ModelConfig(len(vocab), hidden, layers, activation, dtype), vocab, rng)
    model.flat[:] = rng.standard_normal(model.flat.size) * scale
    return model


def fixed_distribution_model(logits, chars=None, dtype="float64"):
    """A model whose next-character distribution is softmax(logits) whatever came before (Wy = 0, by =
    logits): its sampling distribution is known exactly."""
    logits = np.asarray(logits, dtype=np.float64)
    chars = chars or "".join(chr(ord("a") + i) for i in range(len(logits)))
    model = random_model(chars, hidden=4, dtype=dtype, seed=1)
    model.params["Wy"][...] = 0.0
    model.params["by"][...] = logits
    return model


def markov_text(length, alphabet, chain_seed, sample_seed=None, concentration=0.3):
    """Text from a random order-1 Markov chain over `alphabet`. The chain (the 'author') is fixed by
    `chain_seed`; `sample_seed` draws a fresh text from it."""
    table = np.random.default_rng(chain_seed).dirichlet(np.full(len(alphabet), concentration), size=len(alphabet))
    cumulative = table.cumsum(axis=1)
    rng = np.random.default_rng(chain_seed if sample_seed is None else (chain_seed, sample_seed))
    out, state = [], 0
    for u in rng.random(length):
        state = min(int(np.searchsorted(cumulative[state], u)), len(alphabet) - 1)
        out.append(alphabet[state])
    return "".join(out)


def train_tiny(text, path, hidden=16, steps=150, seed=0):
    """A small model trained for a fraction of a second (float64, one thread)."""
    from charrnn.model import ModelConfig
    from charrnn.train import TrainConfig, train

    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    config = TrainConfig(seq_len=32, batch_size=16, steps=steps, eval_every=10_000, lr=1e-2, threads=1, seed=seed)
    result = train(ModelConfig(len(vocab), hidden, 1, "tanh", "float64"), config, vocab, ids, ids[:0], path,
                   progress=False)  # fmt: skip
    return result.model


def save(model, path):
    save_checkpoint(path, model, {}, {})
    return path


def assert_user_error(result, code=1):
    """A CliRunner result is an expected failure: exit `code` (1: runtime, 2: usage mistake), one `Error: ...`
    line on stderr, no traceback."""
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
