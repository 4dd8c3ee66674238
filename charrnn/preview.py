"""Short samples shown while training (`--sample-every`), as min-char-rnn and textgenrnn do.

`SamplePreview` is the hook `train.train(on_sample=...)` is given by the CLI: at a step it draws one
sample per temperature. Its randomness comes from its own generator seeded by (seed, step), so showing
samples never perturbs training (resume stays bit-exact) and a sample at a given step is reproducible.

Drawing is `charrnn.generate.sample`, the compiled sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import generate
from .config import PreviewConfig, parse_temperatures  # noqa: F401 (parse_temperatures: the CLI form)
from .model import Model


@dataclass(frozen=True)
class SamplePreview(PreviewConfig):
    """Draws `length` characters at each of `temperatures`, seeded by (seed, step). Length and
    temperatures are validated as PreviewConfig says."""

    seed: int = 1234

    def __call__(self, model: Model, step: int) -> list[tuple[float, str]]:
        """[(temperature, text)] for this step."""
        out = []
        for index, temperature in enumerate(self.temperatures):
            seed = int(np.random.SeedSequence([self.seed, step, index]).generate_state(1)[0])
            out.append((temperature, _draw(model, self.length, temperature, seed)))
        return out


def _draw(model: Model, length: int, temperature: float, seed: int) -> str:
    return generate.sample(model, length, temperature=temperature, seed=seed).run()[0].text
