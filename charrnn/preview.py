"""Short samples shown while training (`--sample-every`), as min-char-rnn and textgenrnn do.

`SamplePreview` is the hook `train.train(on_sample=...)` is given by the CLI: at a step it draws one
sample per temperature. Its randomness comes from its own generator seeded by (seed, step), so showing
samples never perturbs training (resume stays bit-exact) and a sample at a given step is reproducible.

Drawing is `charrnn.generate.sample`, the compiled sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import generate
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
    return generate.sample(model, length, temperature=temperature, seed=seed).run()[0].text
