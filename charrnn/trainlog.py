"""What a training run says as it goes: the header, one line per evaluation, and the loss/throughput window
each line (and each metrics record) summarises. Text only; train.py decides when."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

NATS_PER_BIT = math.log(2.0)


@dataclass
class Window:
    """Training loss and throughput since the last evaluation (one metrics record's worth)."""

    loss_sum: float = 0.0
    steps: int = 0
    chars: int = 0
    started: float | None = None  # end of the window's first step: JIT compilation does not count

    def add(self, loss: float, chars: int) -> None:
        if self.started is None:
            self.started = time.perf_counter()
        else:
            self.chars += chars
        self.loss_sum, self.steps = self.loss_sum + loss, self.steps + 1

    @property
    def mean_loss(self) -> float | None:
        return self.loss_sum / self.steps if self.steps else None

    @property
    def chars_per_second(self) -> float:
        return self.chars / max(time.perf_counter() - self.started, 1e-9) if self.started else 0.0


def header(model: Any, config: Any, batches: Any, n_val: int, baselines: dict[int, float], documents: Any = None,
           ) -> str:  # fmt: skip
    """The architecture, the data and the n-gram baselines of the validation text, before the first step."""
    c = model.config
    parts = [
        f"model: {c.num_layers} x {c.hidden_size} {c.activation} RNN, vocab {c.vocab_size}"
        + (" (end symbol included)" if documents else "") + f", {model.flat.size:,} parameters ({c.dtype})",
        documents.describe(batches) if documents else f"data: {len(batches.ids):,} train chars, {n_val:,} "
        f"validation chars; {batches.chunks_per_epoch} steps per epoch of {config.batch_size} x {config.seq_len}",
    ]  # fmt: skip
    if baselines:
        parts.append("baselines (validation): " + ", ".join(
            f"{ngram_name(order)} {loss:.3f} nats ({loss / NATS_PER_BIT:.3f} bits)/char"
            for order, loss in baselines.items()))  # fmt: skip
    return "\n".join(parts)


def ngram_name(order: int) -> str:
    return {1: "unigram", 2: "bigram", 3: "trigram"}.get(order, f"{order}-gram")


def evaluation_line(step: int, epoch: int, window: Window, val_loss: float | None, baselines: dict[int, float],
                    improved: bool, abandoned: bool = False, per_doc: float | None = None) -> str:  # fmt: skip
    """`step 400 (epoch 1): train 1.7100, validation 1.8000 nats/char, 2.5969 bits/char (unigram ...) ...`"""
    parts = [f"step {step} (epoch {epoch}):"]
    if window.mean_loss is not None:
        parts.append(f"train {window.mean_loss:.4f},")
    if val_loss is not None:
        # the header lists every order; each evaluation repeats the unigram, bigram and best n-gram
        shown = {order: loss for order, loss in baselines.items() if order in (1, 2, max(baselines))}
        context = ", ".join(f"{ngram_name(order)} {loss:.3f}" for order, loss in shown.items())
        bits = val_loss / NATS_PER_BIT
        parts.append(f"validation {val_loss:.4f} nats/char, {bits:.4f} bits/char"
                     + (f", {per_doc:.3f} nats/document" if per_doc is not None else "")
                     + (f" ({context})" if context else ""))  # fmt: skip
    if abandoned:
        parts.append("evaluation abandoned (stop requested), checkpoint saved without a validation loss;")
    parts.append(f"{window.chars_per_second:,.0f} chars/s" + (" *best*" if improved else ""))
    return " ".join(parts)
