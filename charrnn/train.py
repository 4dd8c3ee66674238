"""Training: the loop, the optimizers, evaluation, and the resumable training state.

One step = one (B, T) chunk: forward, truncated BPTT, clip, optimizer update. Everything needed to
continue a run exactly (weights, optimizer moments, carried hidden state, data position, RNG state,
learning rate, best validation loss) is saved in the checkpoint, so training N steps straight and
training k steps, stopping, then resuming for N-k more give bit-identical weights.

Checkpoints: `output` holds the latest state (what --resume continues); the model with the best
validation loss is written beside it as `<stem>.best.npz`, and every evaluation appends a line to
`<stem>.metrics.jsonl` (metrics.py).

Divergence guard: a non-finite loss, gradient, weight or validation loss never reaches a checkpoint.
The loop rolls back to the last good state (an in-memory `Snapshot` taken at the start and after every
successful evaluation), halves the learning rate for every rollback in a row, logs it and continues;
after `max_rollbacks` in a row it stops (stop_reason "diverged"), keeping the last good checkpoint.
Early stopping: with `patience`, training stops after that many evaluations without a better
validation loss (stop_reason "patience"); the best model is in `<stem>.best.npz`.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .baselines import baseline_table
from .budget import check_training
from .checkpointing import (
    Snapshot,
    TrainState,
    best_path,
    check_writable,
    checkpoint_meta,
    metrics_path,
    optimizer_slots,
    resume_state,
    state_arrays,
)
from .config import LR_SCHEDULES, OPTIMIZERS, TrainConfig  # noqa: F401 (TrainConfig lives in config.py)
from .data import StreamBatches, eval_streams
from .documents import DocumentCorpus
from .errors import CharrnnError
from .fingerprint import ids_hash
from .kernels import blas, optim
from .metrics import MetricsLog
from .model import Model, ModelConfig, save_checkpoint
from .outputs import hold_output, same_file
from .progress import TrainingBar
from .trainlog import NATS_PER_BIT, Window, evaluation_line, header
from .vocab import Vocab
from .workspace import Workspace

__all__ = ["TrainConfig", "TrainResult", "TrainState", "apply_update", "best_path", "evaluate", "ids_hash", "train"]

ABANDON_AFTER = 0.5  # seconds an evaluation may go on after Ctrl-C/SIGTERM before it is abandoned
BASELINE_MAX_TRAIN_CHARS = 1 << 22  # the n-gram baselines are fitted on at most this prefix of the training text


@dataclass
class TrainResult:
    model: Model
    state: TrainState
    stop_reason: str  # "steps" | "time" | "epochs" | "patience" | "diverged" | "interrupted"
    last_train_loss: float | None  # loss of the last step
    last_val_loss: float | None
    chars_per_second: float
    output: Path
    best_output: Path
    rollbacks: int = 0  # times the divergence guard rolled back in this run


def schedule_factor(config: TrainConfig, progress: float) -> float:
    """Multiplier of the learning rate at `progress` in [0, 1] of the run (1 for a constant schedule)."""
    if config.lr_schedule == "constant":
        return 1.0
    progress = min(max(progress, 0.0), 1.0)
    return config.lr_floor + (1.0 - config.lr_floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def apply_update(
    model: Model,
    grad: np.ndarray,
    state: TrainState,
    config: TrainConfig,
    factor: float = 1.0,
    norm: float | None = None,
) -> float:
    """Clip `grad` in place and take one optimizer step on `model.flat` with learning rate state.lr · factor.
    `norm` is grad's global norm if the caller has it already. Returns the pre-clip norm."""
    if norm is None:
        norm = optim._global_norm(grad)
    lr = state.lr * factor
    optim._clip(grad, config.clip, config.clip_value, norm)
    slots = state.optimizer
    if config.optimizer == "adam":
        optim._adam_step(model.flat, grad, slots["m"], slots["v"], lr, config.beta1, config.beta2,
                           config.eps, state.step + 1, config.weight_decay)  # fmt: skip
    elif config.optimizer == "rmsprop":
        optim._rmsprop_step(model.flat, grad, slots["cache"], lr, config.rms_decay, config.eps,
                              config.weight_decay)  # fmt: skip
    elif config.optimizer == "adagrad":
        optim._adagrad_step(model.flat, grad, slots["cache"], lr, config.eps, config.weight_decay)
    else:
        optim._sgd_step(model.flat, grad, slots["velocity"], lr, config.momentum, config.weight_decay)
    return norm


class EvaluationAbandoned(Exception):
    """`evaluate` was told to stop between two chunks (Ctrl-C or SIGTERM during a long evaluation)."""


def evaluate(model: Model, ids: np.ndarray, batch_size: int, seq_len: int, workspace: Workspace | None = None,
             abandon: Callable[[], bool] | None = None) -> float | None:  # fmt: skip
    """Mean cross-entropy (nats/char) over a whole text laid out as parallel streams, each starting
    from a zero state and carrying it across chunks. None if the text is too short to predict.
    `abandon()` is asked between chunks (a chunk takes well under a second); True raises
    EvaluationAbandoned."""
    batches = eval_streams(ids, batch_size, seq_len)
    if batches is None:
        return None
    workspace = workspace or Workspace(model)
    total, state = 0.0, model.initial_state(batches.batch_size)
    for index in range(batches.chunks_per_epoch):
        if abandon is not None and abandon():
            raise EvaluationAbandoned
        inputs, targets = batches.chunk(index)
        loss, state = workspace.loss(inputs, targets, state)
        total += loss
    return total / batches.chunks_per_epoch


def _one_writer(function: Callable) -> Callable:
    """Run the training function holding the write lock of its `output` (outputs.hold_output), so two
    runs never write the same checkpoint and metrics log."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with hold_output(signature.bind(*args, **kwargs).arguments["output"]):
            return function(*args, **kwargs)

    return wrapper


@_one_writer
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
    init_model: Model | None = None,
    on_sample: Callable[[Model, int], None] | None = None,
    train_hash: str | None = None,
    metadata: dict | None = None,
    stop_evaluation: Callable[[], bool] | None = None,
    documents: DocumentCorpus | None = None,
) -> TrainResult:
    """Train (or resume, or fine-tune) and write checkpoints and the metrics log. See the module docstring.

    train_ids, val_ids (N,) ids under `vocab` (np.memmap views work: only touched pages are read).
    With `resume`, the architecture, vocabulary, weights and training state come from that checkpoint;
    with `init_model` (fine-tuning), its weights, vocabulary and architecture, with a fresh optimizer
    state at step 0; in both cases `model_config` is ignored. `on_sample(model, step)` is called every
    `config.sample_every` steps (or after each evaluation) and must not change the model.
    `train_hash` is `ids_hash(train_ids)` when the caller already knows it. `metadata` (JSON-able) is
    added to every checkpoint's metadata (the CLI stores the data options and the run's provenance).
    `stop_evaluation()` is asked between the chunks of an evaluation: once True (the CLI passes its
    Ctrl-C/SIGTERM flag, as it does for `should_stop`), an evaluation that has not finished within
    ABANDON_AFTER seconds is abandoned and the checkpoint saved without a validation loss.
    With `documents` (charrnn/documents.py), batches and validation come from it (train_ids, val_ids: its
    `stream`s, for the baselines and the hash), and every checkpoint carries its split and hashes.
    """
    output = Path(output)
    batches = (StreamBatches(train_ids, config.batch_size, config.seq_len) if documents is None
               else documents.batches(config.batch_size, config.seq_len, config.seed))  # fmt: skip
    train_hash = train_hash or ids_hash(train_ids)
    val_ids = val_ids[: config.val_max_chars]
    if config.patience is not None and len(val_ids) < 2:
        raise CharrnnError("--patience needs validation text (--val-frac > 0 or --val-file)")
    if resume is not None and init_model is not None:
        raise CharrnnError("--resume and --init-from exclude each other (resume continues a run; init-from starts one)")
    if resume is not None:
        model, state = resume_state(resume, vocab, config, train_hash)
        if state.chunk > batches.chunks_per_epoch:
            raise CharrnnError(f"{resume}: resume state chunk {state.chunk} is past the {batches.chunks_per_epoch} "
                               "chunks of an epoch of this corpus")  # fmt: skip
        log(f"resumed {resume} from step {state.step} (epoch {state.epoch}); saving to {output}")
    else:
        rng = np.random.default_rng(config.seed)
        if init_model is None:
            assert model_config is not None
            c = model_config
            check_training(len(vocab), c.hidden_size, c.num_layers, c.dtype, config.batch_size, config.seq_len,
                           config.optimizer, config.dropout > 0)  # fmt: skip
            model = Model.initialize(model_config, vocab, rng)
        elif init_model.vocab != vocab:
            raise CharrnnError("the --init-from model's vocabulary differs from the vocabulary of the encoded corpus")
        else:
            model = Model(init_model.config, init_model.vocab, init_model.flat.copy())
        state = TrainState(lr=config.lr, rng_state=rng.bit_generator.state, train_hash=train_hash)
        state.optimizer = {slot: np.zeros_like(model.flat) for slot in optimizer_slots(config.optimizer)}
    if resume is not None or init_model is not None:
        c = model.config
        check_training(len(vocab), c.hidden_size, c.num_layers, c.dtype, config.batch_size, config.seq_len,
                       config.optimizer, config.dropout > 0)  # fmt: skip
    if state.hidden is None:
        state.hidden = model.initial_state(config.batch_size)
    check_writable(output)
    own_history = resume is not None and same_file(resume, output)
    metrics = MetricsLog(metrics_path(output), keep_upto_step=state.step if resume is not None else None,
                         source=metrics_path(resume) if resume is not None else None)  # fmt: skip
    # a best model left by an earlier, unrelated run must not sit beside this one: replaced by this run's
    # first better model, else removed at this run's first checkpoint (not before: an early failure loses nothing)
    stale_best = not own_history and best_path(output).exists()
    stop_requested: list[float] = []

    def abandon_evaluation() -> bool:
        """Ctrl-C/SIGTERM during an evaluation: finish it only if that takes under half a second more."""
        if stop_evaluation is None or not stop_evaluation():
            return False
        stop_requested[:] = stop_requested or [time.perf_counter()]
        return time.perf_counter() - stop_requested[0] > ABANDON_AFTER

    baselines = {}
    if len(val_ids) > 1:
        baselines = baseline_table(train_ids[:BASELINE_MAX_TRAIN_CHARS], val_ids, len(vocab), orders=(1, 2, 3, 4, 5))
    log(header(model, config, batches, len(val_ids), baselines, documents))
    limit_steps = _step_limit(config, batches, state)
    grad = np.empty_like(model.flat)
    start, elapsed_before, last_val, last_loss, stop_reason = time.perf_counter(), state.elapsed, None, None, None
    overall, window = Window(), Window()
    evaluated_at = state.step if resume is not None else -1
    snapshot, failures, rollbacks = Snapshot.take(model, state), 0, 0

    def roll_back(what: str, failed_at: int) -> None:
        nonlocal failures, rollbacks, window
        failures, rollbacks, window = failures + 1, rollbacks + 1, Window()
        snapshot.restore(model, state)
        state.lr = snapshot.lr * 0.5**failures
        bar.rewind(state.step)
        if failures < config.max_rollbacks:
            log(f"step {failed_at}: {what}; rolled back to step {snapshot.step} and halved the learning rate to "
                f"{state.lr:.3g} (rollback {failures} of at most {config.max_rollbacks} in a row)")  # fmt: skip

    workspace = Workspace(model)
    with blas.thread_limit(config.threads):
        bar = TrainingBar(progress, limit_steps, config.time_budget, state.step, log)
        factor = schedule_factor(config, _progress(config, state, limit_steps, 0.0))  # of the latest step
        try:
            while True:
                if state.chunk == batches.chunks_per_epoch:  # epoch boundary: reset state, decay lr
                    state.epoch, state.chunk = state.epoch + 1, 0
                    state.hidden[...] = 0.0
                    state.lr *= config.lr_decay
                reason = "diverged" if failures >= config.max_rollbacks else None
                reason = reason or _stop_reason(config, state, batches, limit_steps, start, should_stop)
                if reason is None:
                    # documents: (inputs, targets, weights, resets); a stream: (inputs, targets)
                    inputs, targets, *marks = batches.chunk(state.chunk, state.epoch) if documents else \
                        batches.chunk(state.chunk)  # fmt: skip
                    bar.step_starting()
                    # dropout masks depend only on (seed, step): a resumed run draws the same ones
                    loss, grad, hidden = workspace.loss_and_grads(
                        inputs, targets, state.hidden, grad, config.dropout, config.seed * 1_000_003 + state.step,
                        *marks,
                    )  # fmt: skip
                    norm = optim._global_norm(grad)  # one pass serves the divergence check and clipping
                    if not (math.isfinite(loss) and math.isfinite(norm)):
                        roll_back("non-finite loss or gradient", state.step + 1)
                        continue
                    progress = _progress(config, state, limit_steps, time.perf_counter() - start)
                    factor = schedule_factor(config, progress)
                    apply_update(model, grad, state, config, factor, norm)
                    if not math.isfinite(optim._global_norm(model.flat)):
                        roll_back("the update made weights non-finite", state.step + 1)
                        continue
                    last_loss = loss
                    state.hidden, state.step, state.chunk = hidden, state.step + 1, state.chunk + 1
                    chars = int(marks[0].sum()) if marks else batches.chars_per_chunk
                    overall.add(loss, chars)
                    window.add(loss, chars)
                    bar.step_done(state.step, {"epoch": state.epoch, "loss": f"{loss:.3f}",
                                               "chars_s": f"{overall.chars_per_second:,.0f}"})  # fmt: skip
                due = state.step % config.eval_every == 0 if reason is None else evaluated_at != state.step
                if due:
                    state.elapsed = elapsed_before + time.perf_counter() - start
                    val_loss, finite, improved = _evaluate_and_save(
                        model, config, state, val_ids, output, baselines, window, metrics, log, state.lr * factor,
                        metadata or {}, abandon_evaluation, documents)  # fmt: skip
                    if stale_best and finite:
                        stale_best = False
                        if not improved and best_path(output).exists():
                            best_path(output).unlink()
                            log(f"removed {best_path(output)}, the best model of an earlier run")
                    if not finite:
                        roll_back("validation loss is non-finite", state.step)
                        if reason == "diverged":
                            stop_reason = reason
                            break
                        continue
                    last_val, evaluated_at, window = val_loss, state.step, Window()
                    snapshot, failures = Snapshot.take(model, state), 0
                sample_due = due if config.sample_every is None else reason is None and (
                    config.sample_every > 0 and state.step % config.sample_every == 0)  # fmt: skip
                if on_sample is not None and sample_due and reason != "diverged":
                    on_sample(model, state.step)
                if reason is not None:
                    stop_reason = reason
                    break
        finally:
            bar.close()
    return TrainResult(model, state, stop_reason, last_loss, last_val, overall.chars_per_second, output,
                       best_path(output), rollbacks)  # fmt: skip


def _step_limit(config: TrainConfig, batches: StreamBatches, state: TrainState) -> int | None:
    limits = []
    if config.steps is not None:
        limits.append(config.steps)
    if config.epochs is not None:
        limits.append(int(math.ceil(config.epochs * batches.chunks_per_epoch)))
    if not limits and config.time_budget is None:
        limits.append(50 * batches.chunks_per_epoch)  # char-rnn's default: 50 epochs
    return min(limits) if limits else None


def _progress(config: TrainConfig, state: TrainState, limit_steps: int | None, elapsed: float) -> float:
    """How far through its budget the run is, in [0, 1]: the furthest of steps and time. With --time the
    schedule follows the clock, so such runs are not bit-reproducible (their step count never is)."""
    progress = 0.0 if limit_steps is None else state.step / max(limit_steps, 1)
    if config.time_budget is not None:
        progress = max(progress, elapsed / config.time_budget)
    return progress


def _stop_reason(config, state, batches, limit_steps, start, should_stop) -> str | None:
    if should_stop():
        return "interrupted"
    if config.patience is not None and state.evals_since_best >= config.patience:
        return "patience"
    if limit_steps is not None and state.step >= limit_steps:
        return "steps" if config.steps is not None and state.step >= config.steps else "epochs"
    if config.time_budget is not None and time.perf_counter() - start >= config.time_budget:
        return "time"
    return None


def _evaluate_and_save(model, config, state, val_ids, output, baselines, window, metrics, log, lr, metadata,
                       abandon=None, documents=None):  # fmt: skip
    """Evaluate, then (only if everything is finite) save checkpoints and log. `lr` is the learning rate of
    the last step (schedule applied), for the metrics. An evaluation `abandon()` stops is skipped: the
    checkpoint is saved without a validation loss. Returns (val_loss, finite, improved)."""
    abandoned, per_doc, (meta, arrays) = False, None, documents.checkpoint_extras() if documents else ({}, {})
    if documents is not None:  # validation per character and per document; the split and hashes in checkpoints
        val_loss, per_doc = documents.evaluate(model, config.val_max_chars) or (None, None)
    else:
        try:
            val_loss = evaluate(model, val_ids, config.batch_size, config.seq_len, None, abandon) if len(
                val_ids) > 1 else None  # fmt: skip
        except EvaluationAbandoned:
            val_loss, abandoned = None, True
    if val_loss is not None and not math.isfinite(val_loss):
        return val_loss, False, False
    improved = val_loss is not None and (state.best_val_loss is None or val_loss < state.best_val_loss)
    if improved:
        state.best_val_loss, state.evals_since_best = val_loss, 0
        save_checkpoint(best_path(output), model, {**metadata, **checkpoint_meta(config, state), "role": "best",
                                                   **meta}, arrays)  # fmt: skip
    elif val_loss is not None:
        state.evals_since_best += 1
    save_checkpoint(output, model, {**metadata, **checkpoint_meta(config, state), "role": "latest", **meta},
                    {**state_arrays(state), **arrays})  # fmt: skip
    bits = None if val_loss is None else val_loss / NATS_PER_BIT
    metrics.append({"step": state.step, "epoch": state.epoch, "elapsed_seconds": round(state.elapsed, 3), "lr": lr,
                    "train_nats_per_char": window.mean_loss, "val_nats_per_char": val_loss, "val_bits_per_char": bits,
                    "chars_per_second": round(window.chars_per_second, 1), "best": improved,
                    **({"val_nats_per_document": per_doc} if documents else {})})  # fmt: skip
    log(evaluation_line(state.step, state.epoch, window, val_loss, baselines, improved, abandoned, per_doc))
    return val_loss, True, improved
