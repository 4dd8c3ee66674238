"""Training: the loop, the optimizers, evaluation, and the resumable training state.

One step = one (B, T) chunk: forward, truncated BPTT, clip, optimizer update. Everything needed to
continue a run exactly (weights, optimizer moments, carried hidden state, data position, RNG state,
learning rate, best validation loss) is saved in the checkpoint, so training N steps straight and
training k steps, stopping, then resuming for N-k more give bit-identical weights.

Checkpoints: `output` holds the latest state (what --resume continues); the model with the best
validation loss is written beside it as `<stem>.best.npz`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from . import kernels
from .baselines import baseline_table
from .data import StreamBatches, eval_streams
from .errors import CharrnnError
from .model import Model, ModelConfig, load_checkpoint, save_checkpoint
from .vocab import Vocab

OPTIMIZERS = ("adam", "rmsprop", "adagrad", "sgd")
NATS_PER_BIT = math.log(2.0)


@dataclass(frozen=True)
class TrainConfig:
    """Everything about how to train (the architecture is in ModelConfig)."""

    seq_len: int = 64
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"
    momentum: float = 0.9  # SGD
    beta1: float = 0.9  # Adam
    beta2: float = 0.999  # Adam
    rms_decay: float = 0.95  # RMSprop, as in char-rnn
    eps: float = 1e-8
    weight_decay: float = 0.0
    dropout: float = 0.0  # probability of dropping each non-recurrent connection during training
    clip: float = 5.0  # global gradient norm; 0 disables
    clip_value: float = 0.0  # per-element clamp; 0 disables
    lr_decay: float = 1.0  # multiply the learning rate by this at the start of every epoch after the first
    epochs: float | None = None
    steps: int | None = None
    time_budget: float | None = None  # seconds of this run
    eval_every: int = 200
    seed: int = 1234
    threads: int = 0  # 0: all cores

    def __post_init__(self) -> None:
        checks = [
            (self.lr > 0 and math.isfinite(self.lr), f"--lr must be a positive number, got {self.lr}"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.clip >= 0, f"--clip must be >= 0, got {self.clip}"),
            (self.clip_value >= 0, f"--clip-value must be >= 0, got {self.clip_value}"),
            (0 < self.lr_decay <= 1, f"--lr-decay must be in (0, 1], got {self.lr_decay}"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.dropout < 1, f"--dropout must be in [0, 1), got {self.dropout}"),
            (self.epochs is None or self.epochs > 0, f"--epochs must be > 0, got {self.epochs}"),
            (self.steps is None or self.steps > 0, f"--steps must be > 0, got {self.steps}"),
            (self.time_budget is None or self.time_budget > 0, f"--time must be > 0, got {self.time_budget}"),
            (self.eval_every >= 1, f"--eval-every must be >= 1, got {self.eval_every}"),
            (self.threads >= 0, f"--threads must be >= 0, got {self.threads}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
        ]
        for ok, message in checks:
            if not ok:
                raise CharrnnError(message)


@dataclass
class TrainState:
    """The part of a run that changes every step, besides the weights."""

    step: int = 0
    epoch: int = 0
    chunk: int = 0  # next chunk of the epoch
    lr: float = 0.0
    best_val_loss: float | None = None
    hidden: np.ndarray | None = None  # (L, B, H) carried into the next chunk
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    rng_state: dict[str, Any] | None = None
    train_hash: str = ""


@dataclass
class TrainResult:
    model: Model
    state: TrainState
    stop_reason: str  # "steps" | "time" | "epochs" | "interrupted"
    last_train_loss: float | None  # loss of the last step
    last_val_loss: float | None
    chars_per_second: float
    output: Path
    best_output: Path


def best_path(output: str | Path) -> Path:
    """Where the best-by-validation model is written: beside `output`, as <stem>.best.npz."""
    output = Path(output)
    return output.with_name(f"{output.stem}.best{output.suffix or '.npz'}")


def optimizer_slots(name: str) -> tuple[str, ...]:
    return {"adam": ("m", "v"), "rmsprop": ("cache",), "adagrad": ("cache",), "sgd": ("velocity",)}[name]


def apply_update(model: Model, grad: np.ndarray, state: TrainState, config: TrainConfig) -> float:
    """Clip `grad` in place and take one optimizer step on `model.flat`. Returns the pre-clip norm."""
    norm = kernels._global_norm(grad)
    kernels._clip(grad, config.clip, config.clip_value, norm)
    slots = state.optimizer
    if config.optimizer == "adam":
        kernels._adam_step(model.flat, grad, slots["m"], slots["v"], state.lr, config.beta1, config.beta2,
                           config.eps, state.step + 1, config.weight_decay)  # fmt: skip
    elif config.optimizer == "rmsprop":
        kernels._rmsprop_step(model.flat, grad, slots["cache"], state.lr, config.rms_decay, config.eps,
                              config.weight_decay)  # fmt: skip
    elif config.optimizer == "adagrad":
        kernels._adagrad_step(model.flat, grad, slots["cache"], state.lr, config.eps, config.weight_decay)
    else:
        kernels._sgd_step(model.flat, grad, slots["velocity"], state.lr, config.momentum, config.weight_decay)
    return norm


def evaluate(model: Model, ids: np.ndarray, batch_size: int, seq_len: int) -> float | None:
    """Mean cross-entropy (nats/char) over a whole text laid out as parallel streams, each starting
    from a zero state and carrying it across chunks. None if the text is too short to predict."""
    batches = eval_streams(ids, batch_size, seq_len)
    if batches is None:
        return None
    total, state = 0.0, model.initial_state(batches.batch_size)
    for index in range(batches.chunks_per_epoch):
        inputs, targets = batches.chunk(index)
        loss, state = model.loss(inputs, targets, state)
        total += loss
    return total / batches.chunks_per_epoch


def ids_hash(ids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(ids).tobytes()).hexdigest()[:16]


def train(
    model_config: ModelConfig | None,
    config: TrainConfig,
    vocab: Vocab,
    train_ids: np.ndarray,
    val_ids: np.ndarray,
    output: str | Path,
    resume: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda message: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Train (or resume training) and write checkpoints. See the module docstring.

    train_ids, val_ids (N,) ids under `vocab`. With `resume`, the architecture, vocabulary, weights and
    training state come from that checkpoint and `model_config` is ignored.
    """
    output = Path(output)
    batches = StreamBatches(train_ids, config.batch_size, config.seq_len)
    train_hash = ids_hash(train_ids)
    if resume is not None:
        model, state = _resume(resume, vocab, config, train_hash)
    else:
        assert model_config is not None
        rng = np.random.default_rng(config.seed)
        model = Model.initialize(model_config, vocab, rng)
        state = TrainState(lr=config.lr, rng_state=rng.bit_generator.state, train_hash=train_hash)
        state.optimizer = {slot: np.zeros_like(model.flat) for slot in optimizer_slots(config.optimizer)}
    if state.hidden is None:
        state.hidden = model.initial_state(config.batch_size)
    _check_writable(output)

    baselines = baseline_table(train_ids, val_ids, len(vocab), orders=(1, 2)) if len(val_ids) > 1 else {}
    log(_header(model, config, batches, len(val_ids), baselines))
    limit_steps = _step_limit(config, batches, state)
    grad = np.empty_like(model.flat)
    start, last_val, last_loss, stop_reason = time.perf_counter(), None, None, "epochs"
    # chars/s is measured from the end of the first step, so JIT compilation does not count
    speed_start, speed_chars, evaluated_at = None, 0, -1
    with kernels.thread_limit(config.threads):
        bar = tqdm(total=limit_steps, initial=state.step, unit="step", disable=not progress, dynamic_ncols=True,
                   leave=False)  # fmt: skip
        try:
            while True:
                if state.chunk == batches.chunks_per_epoch:  # epoch boundary: reset state, decay lr
                    state.epoch, state.chunk = state.epoch + 1, 0
                    state.hidden[...] = 0.0
                    state.lr *= config.lr_decay
                reason = _stop_reason(config, state, batches, limit_steps, start, should_stop)
                if reason:
                    stop_reason = reason
                    break
                inputs, targets = batches.chunk(state.chunk)
                # dropout masks depend only on (seed, step): a resumed run draws the same ones
                loss, grad, hidden = model.loss_and_grads(
                    inputs,
                    targets,
                    state.hidden,
                    grad,
                    config.dropout,
                    dropout_seed=config.seed * 1_000_003 + state.step,
                )
                if not math.isfinite(loss) or not math.isfinite(kernels._global_norm(grad)):
                    raise CharrnnError(
                        f"training diverged at step {state.step + 1} (non-finite loss or gradient); "
                        f"the last saved checkpoint {output} is unaffected — try a lower --lr"
                    )
                apply_update(model, grad, state, config)
                last_loss = loss
                state.hidden, state.step, state.chunk = hidden, state.step + 1, state.chunk + 1
                if speed_start is None:
                    speed_start = time.perf_counter()
                else:
                    speed_chars += batches.chars_per_chunk
                speed = speed_chars / max(time.perf_counter() - speed_start, 1e-9)
                bar.update(1)
                bar.set_postfix(epoch=state.epoch, loss=f"{loss:.3f}", chars_s=f"{speed:,.0f}", refresh=False)
                if state.step % config.eval_every == 0:
                    last_val = _evaluate_and_save(model, config, state, val_ids, output, baselines, log)
                    evaluated_at = state.step
        finally:
            bar.close()
        if evaluated_at != state.step:  # always end with an evaluation and a checkpoint of the final state
            last_val = _evaluate_and_save(model, config, state, val_ids, output, baselines, log)
    speed = speed_chars / max(time.perf_counter() - speed_start, 1e-9) if speed_start else 0.0
    return TrainResult(model, state, stop_reason, last_loss, last_val, speed, output, best_path(output))


def _header(model: Model, config: TrainConfig, batches: StreamBatches, n_val: int, baselines: dict) -> str:
    c = model.config
    parts = [
        f"model: {c.num_layers} x {c.hidden_size} {c.activation} RNN, vocab {c.vocab_size}, "
        f"{model.flat.size:,} parameters ({c.dtype})",
        f"data: {len(batches.ids):,} train chars, {n_val:,} validation chars; {batches.chunks_per_epoch} steps "
        f"per epoch of {config.batch_size} x {config.seq_len}",
    ]
    if baselines:
        parts.append("baselines (validation): " + ", ".join(
            f"{_ngram_name(order)} {loss:.3f} nats ({loss / NATS_PER_BIT:.3f} bits)/char"
            for order, loss in baselines.items()))  # fmt: skip
    return "\n".join(parts)


def _ngram_name(order: int) -> str:
    return {1: "unigram", 2: "bigram", 3: "trigram"}.get(order, f"{order}-gram")


def _step_limit(config: TrainConfig, batches: StreamBatches, state: TrainState) -> int | None:
    limits = []
    if config.steps is not None:
        limits.append(config.steps)
    if config.epochs is not None:
        limits.append(int(math.ceil(config.epochs * batches.chunks_per_epoch)))
    if not limits and config.time_budget is None:
        limits.append(50 * batches.chunks_per_epoch)  # char-rnn's default: 50 epochs
    return min(limits) if limits else None


def _stop_reason(config, state, batches, limit_steps, start, should_stop) -> str | None:
    if should_stop():
        return "interrupted"
    if limit_steps is not None and state.step >= limit_steps:
        return "steps" if config.steps is not None and state.step >= config.steps else "epochs"
    if config.time_budget is not None and time.perf_counter() - start >= config.time_budget:
        return "time"
    return None


def _evaluate_and_save(model, config, state, val_ids, output, baselines, log) -> float | None:
    val_loss = evaluate(model, val_ids, config.batch_size, config.seq_len) if len(val_ids) > 1 else None
    improved = val_loss is not None and (state.best_val_loss is None or val_loss < state.best_val_loss)
    if improved:
        state.best_val_loss = val_loss
        save_checkpoint(best_path(output), model, {**_meta(config, state), "role": "best"}, {})
    save_checkpoint(output, model, {**_meta(config, state), "role": "latest"}, _state_arrays(state))
    if val_loss is not None:
        context = ", ".join(f"{_ngram_name(order)} {loss:.3f}" for order, loss in baselines.items())
        log(
            f"step {state.step} (epoch {state.epoch}): validation {val_loss:.4f} nats/char, "
            f"{val_loss / NATS_PER_BIT:.4f} bits/char"
            + (f" ({context})" if context else "")
            + (" *best*" if improved else "")
        )
    return val_loss


def _meta(config: TrainConfig, state: TrainState) -> dict[str, Any]:
    return {
        "train_config": asdict(config),
        "step": state.step,
        "epoch": state.epoch,
        "chunk": state.chunk,
        "lr": state.lr,
        "best_val_loss": state.best_val_loss,
        "rng_state": state.rng_state,
        "train_hash": state.train_hash,
    }


def _state_arrays(state: TrainState) -> dict[str, np.ndarray]:
    arrays = {f"optim.{slot}": value for slot, value in state.optimizer.items()}
    if state.hidden is not None:
        arrays["hidden"] = state.hidden
    return arrays


def _resume(path: str | Path, vocab: Vocab, config: TrainConfig, train_hash: str) -> tuple[Model, TrainState]:
    model, meta, arrays = load_checkpoint(path)
    if model.vocab != vocab:
        raise CharrnnError(f"{path}: the checkpoint's vocabulary differs from this corpus's; use the same corpus")
    if meta.get("role") != "latest":
        raise CharrnnError(f"{path} holds no training state (is it a .best.npz?); resume from the -o file")
    if meta.get("train_hash") != train_hash:
        raise CharrnnError(f"{path} was trained on a different training text; resume needs the same corpus")
    saved = meta["train_config"]
    for option, key in (("--optimizer", "optimizer"), ("--batch-size", "batch_size"), ("--seq-len", "seq_len")):
        if saved.get(key) != getattr(config, key):
            raise CharrnnError(f"{path} was trained with {option} {saved.get(key)}; resume with the same")
    slots = {}
    for slot in optimizer_slots(config.optimizer):
        value = arrays.get(f"optim.{slot}")
        if value is None or value.shape != model.flat.shape:
            raise CharrnnError(f"{path}: optimizer state optim.{slot} is missing or has the wrong shape")
        slots[slot] = value.astype(model.dtype)
    state = TrainState(
        step=int(meta["step"]), epoch=int(meta["epoch"]), chunk=int(meta["chunk"]), lr=float(meta["lr"]),
        best_val_loss=meta.get("best_val_loss"), hidden=arrays.get("hidden"), optimizer=slots,
        rng_state=meta.get("rng_state"), train_hash=train_hash,
    )  # fmt: skip
    return model, state


def _check_writable(output: Path) -> None:
    """Fail before training, not after an hour of it, if the checkpoint cannot be written."""
    directory = output.parent if str(output.parent) else Path(".")
    if not directory.is_dir():
        raise CharrnnError(f"cannot write {output}: directory {directory} does not exist")
    if output.is_dir():
        raise CharrnnError(f"cannot write {output}: it is a directory")
    probe = directory / f".{output.name}.probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CharrnnError(f"cannot write {output}: {error.strerror}") from None
