"""Short samples shown while training (`--sample-every`), as min-char-rnn and textgenrnn do.

`SamplePreview` is the hook `train.train(on_sample=...)` is given by the CLI: at a step it draws one
sample per temperature. Its randomness comes from its own generator seeded by (seed, step), so showing
samples never perturbs training (resume stays bit-exact) and a sample at a given step is reproducible.

It uses the compiled sampler `charrnn.generate.sample` when that module is present, and otherwise the
small NumPy loop `_numpy_sample_fallback` below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CharrnnError
from .model import Model


@dataclass(frozen=True)
class SamplePreview:
    """Draws `length` characters at each of `temperatures`, seeded by (seed, step)."""

    length: int = 200
    temperatures: tuple[float, ...] = (0.5, 1.0)
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.length < 1:
            raise CharrnnError(f"--sample-length must be >= 1, got {self.length}")
        if not self.temperatures or not all(t > 0 and math.isfinite(t) for t in self.temperatures):
            raise CharrnnError(f"--sample-temperatures must be positive numbers, got {list(self.temperatures)}")

    def __call__(self, model: Model, step: int) -> list[tuple[float, str]]:
        """[(temperature, text)] for this step."""
        out = []
        for index, temperature in enumerate(self.temperatures):
            seed = int(np.random.SeedSequence([self.seed, step, index]).generate_state(1)[0])
            out.append((temperature, _draw(model, self.length, temperature, seed)))
        return out


def parse_temperatures(text: str) -> tuple[float, ...]:
    """'0.5,1.0' -> (0.5, 1.0)."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise CharrnnError(f"--sample-temperatures must be comma-separated numbers, got {text!r}") from None


def _draw(model: Model, length: int, temperature: float, seed: int) -> str:
    try:
        from . import generate  # the compiled sampler (sampler branch)
    except ImportError:
        return _numpy_sample_fallback(model, length, temperature, seed)
    if Path(generate.__file__).parent != Path(__file__).parent:
        # an editable install of another checkout can supply a generate.py this checkout's kernels lack
        return _numpy_sample_fallback(model, length, temperature, seed)
    return generate.sample(model, length, temperature=temperature, seed=seed).run()[0].text


# ---- NumPy fallback sampler: TO BE REPLACED at merge time by charrnn.generate.sample ----
def _numpy_sample_fallback(model: Model, length: int, temperature: float, seed: int) -> str:
    """One sample, a character at a time in NumPy (slow, but `length` is a few hundred). Starts as
    generate.sample does: from the state after "\\n" if the vocabulary has it, else from zeros."""
    rng = np.random.default_rng(seed)
    p, config = {k: v.astype(np.float64) for k, v in model.params.items()}, model.config
    hidden = np.zeros((config.num_layers, config.hidden_size))

    def step(char_id: int) -> None:
        below = p["Wx"][char_id]
        for layer in range(config.num_layers):
            pre = below + hidden[layer] @ p["Wh"][layer] + p["bh"][layer]
            hidden[layer] = np.maximum(pre, 0.0) if config.activation == "relu" else np.tanh(pre)
            if layer + 1 < config.num_layers:
                below = hidden[layer] @ p["Wu"][layer]

    if "\n" in model.vocab:
        step(model.vocab.index["\n"])
    ids = []
    for _ in range(length):
        logits = (hidden[-1] @ p["Wy"] + p["by"]) / temperature
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        ids.append(int(rng.choice(len(probs), p=probs)))
        step(ids[-1])
    return model.vocab.decode(ids)
