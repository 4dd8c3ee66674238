"""The PyTorch baseline: charrnn's model written the way a PyTorch user would, in two variants.

charrnn's first layer is h_t = tanh(Wx[x_t] + h_{t-1}·Wh + bh): the one-hot input makes x_t·Wx a row
lookup. PyTorch has no nn.RNN that takes ids, so a user writes one of

  "onehot":    F.one_hot(x, V).float() -> nn.RNN(V, H)   exactly charrnn's parametrisation (W_ih = Wxᵀ);
               the input product is a dense (T·B, V)·(V, H) GEMM, 2HV FLOPs per char more than a lookup.
  "embedding": nn.Embedding(V, H) -> nn.RNN(H, H)       a lookup followed by an extra H×H input product
               (2H² FLOPs per char more, the same function class).

Both are timed and the report takes the faster as the baseline, so charrnn is compared with the best a
plain PyTorch user gets. Either way: nn.Linear(H, V) output, cross-entropy (mean over positions), Adam
(lr 2e-3, as charrnn's default), clip_grad_norm_(5), and the hidden state carried from chunk to chunk
and detached (truncated BPTT), as in charrnn.train.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ("onehot", "embedding")
LR, CLIP = 2e-3, 5.0


class CharRNN(nn.Module):
    """One-layer tanh Elman RNN language model; `forward` returns (logits (B, T, V), final state (1, B, H))."""

    def __init__(self, variant: str, vocab_size: int, hidden_size: int):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.variant, self.vocab_size, self.hidden_size = variant, vocab_size, hidden_size
        self.embed = nn.Embedding(vocab_size, hidden_size) if variant == "embedding" else None
        self.rnn = nn.RNN(hidden_size if self.embed else vocab_size, hidden_size, nonlinearity="tanh", batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self.embed(ids) if self.embed is not None else F.one_hot(ids, self.vocab_size).to(torch.float32)
        outputs, state = self.rnn(inputs, state)
        return self.head(outputs), state


def torch_model(variant: str, vocab_size: int, hidden_size: int) -> CharRNN:
    return CharRNN(variant, vocab_size, hidden_size)


def _tensors(chunk) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, targets = chunk
    return torch.from_numpy(inputs.copy()), torch.from_numpy(targets.copy())


def torch_train_step(model: CharRNN, next_chunk: Callable, batch: int) -> Callable[[], float]:
    """One training step: forward, cross-entropy, backward, clip_grad_norm_(5), Adam; state detached."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    chunks = [_tensors(next_chunk()) for _ in range(8)]  # converted once: the loop times the model only
    position = [0]
    state = [torch.zeros(1, batch, model.hidden_size)]

    def step() -> float:
        inputs, targets = chunks[position[0] % len(chunks)]
        position[0] += 1
        logits, final = model(inputs, state[0].detach())
        loss = F.cross_entropy(logits.reshape(-1, model.vocab_size), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        state[0] = final
        return loss.item()

    return step


def torch_score_step(model: CharRNN, next_chunk: Callable, batch: int) -> Callable[[], float]:
    """Forward pass over a (B, T) chunk with the loss at every position, under inference_mode; state carried."""
    chunks = [_tensors(next_chunk()) for _ in range(8)]
    position = [0]
    state = [torch.zeros(1, batch, model.hidden_size)]

    @torch.inference_mode()
    def step() -> float:
        inputs, targets = chunks[position[0] % len(chunks)]
        position[0] += 1
        logits, state[0] = model(inputs, state[0])
        return F.cross_entropy(logits.reshape(-1, model.vocab_size), targets.reshape(-1)).item()

    return step


@torch.no_grad()
def sample_loop(model: CharRNN, batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """The eager per-character sampling loop (as in char-rnn.pytorch's generate.py): per character one
    nn.RNN step, softmax and torch.multinomial, for `batch` streams at once. Returns (batch, length) ids."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(batch, 1, dtype=torch.long)
    state = torch.zeros(1, batch, model.hidden_size)
    out = torch.empty(batch, length, dtype=torch.long)
    for i in range(length):
        logits, state = model(ids, state)
        probs = torch.softmax(logits[:, -1], dim=-1)
        ids = torch.multinomial(probs, 1, generator=generator)
        out[:, i] = ids[:, 0]
    return out
