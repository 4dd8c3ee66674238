"""Shared fixtures: small self-generated corpora and models, and user state kept inside tmp."""

import numpy as np
import pytest

from charrnn.model import Model, ModelConfig
from charrnn.vocab import Vocab


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Nothing a test does touches the real cache or home directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.chdir(tmp_path)


def make_text(length: int, seed: int = 0, alphabet: str = "abcde fgh\n") -> str:
    """Text from a random order-1 Markov chain: structured enough to learn, no download needed."""
    rng = np.random.default_rng(seed)
    size = len(alphabet)
    table = rng.dirichlet(np.full(size, 0.3), size=size)
    cumulative = table.cumsum(axis=1)
    out, state = [], 0
    draws = rng.random(length)
    for u in draws:
        state = min(int(np.searchsorted(cumulative[state], u)), size - 1)
        out.append(alphabet[state])
    return "".join(out)


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(make_text(6000), encoding="utf-8")
    return path


def random_model(vocab_size=5, hidden=7, layers=1, activation="tanh", dtype="float64", seed=0, scale=0.5) -> Model:
    """A model with random (not initial) weights, so every gradient path is exercised."""
    rng = np.random.default_rng(seed)
    config = ModelConfig(vocab_size, hidden, layers, activation, dtype)
    vocab = Vocab("".join(chr(ord("a") + i) for i in range(vocab_size)))
    model = Model.initialize(config, vocab, rng)
    model.flat[:] = rng.standard_normal(model.flat.size) * scale
    return model
