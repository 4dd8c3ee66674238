"""The training state and where it is kept: on disk (checkpoints, resume) and in memory (rollback).

Files beside `-o model.npz`: `model.best.npz` (best validation loss, weights only) and
`model.metrics.jsonl` (one line per evaluation, see metrics.py). `TrainState` is everything besides
the weights that a bit-exact resume needs; `Snapshot` is the in-memory copy of the last good state that
the divergence guard rolls back to.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import STORED, check_values, option_specs
from .errors import CharrnnError, OptionError
from .model import Model, load_checkpoint
from .vocab import Vocab


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
    elapsed: float = 0.0  # seconds of training in all runs so far (resumes included)
    evals_since_best: int = 0  # evaluations since the validation loss last improved (--patience)


def best_path(output: str | Path) -> Path:
    """Where the best-by-validation model is written: beside `output`, as <stem>.best.npz."""
    output = Path(output)
    return output.with_name(f"{output.stem}.best{output.suffix or '.npz'}")


def metrics_path(output: str | Path) -> Path:
    """Where the evaluation log is written: beside `output`, as <stem>.metrics.jsonl."""
    output = Path(output)
    return output.with_name(f"{output.stem}.metrics.jsonl")


def optimizer_slots(name: str) -> tuple[str, ...]:
    return {"adam": ("m", "v"), "rmsprop": ("cache",), "adagrad": ("cache",), "sgd": ("velocity",)}[name]


@dataclass(frozen=True)
class Snapshot:
    """In-memory copy of a good state (weights, optimizer moments, carried hidden state, data position,
    learning rate), taken at the start and after every successful evaluation."""

    step: int
    epoch: int
    chunk: int
    lr: float
    flat: np.ndarray
    optimizer: dict[str, np.ndarray]
    hidden: np.ndarray

    @classmethod
    def take(cls, model: Model, state: TrainState) -> Snapshot:
        assert state.hidden is not None
        optimizer = {slot: value.copy() for slot, value in state.optimizer.items()}
        return cls(state.step, state.epoch, state.chunk, state.lr, model.flat.copy(), optimizer, state.hidden.copy())

    def restore(self, model: Model, state: TrainState) -> None:
        """Put the weights and state back in place (the arrays keep their identity)."""
        model.flat[...] = self.flat
        for slot, value in self.optimizer.items():
            state.optimizer[slot][...] = value
        state.hidden = self.hidden.copy()
        state.step, state.epoch, state.chunk, state.lr = self.step, self.epoch, self.chunk, self.lr


def checkpoint_meta(config: Any, state: TrainState) -> dict[str, Any]:
    """The JSON metadata of a training checkpoint (`config` is the TrainConfig)."""
    return {
        "train_config": asdict(config),
        "step": state.step,
        "epoch": state.epoch,
        "chunk": state.chunk,
        "lr": state.lr,
        "best_val_loss": state.best_val_loss,
        "rng_state": state.rng_state,
        "train_hash": state.train_hash,
        "elapsed": state.elapsed,
        "evals_since_best": state.evals_since_best,
    }


def state_arrays(state: TrainState) -> dict[str, np.ndarray]:
    arrays = {f"optim.{slot}": value for slot, value in state.optimizer.items()}
    if state.hidden is not None:
        arrays["hidden"] = state.hidden
    return arrays


MAX_STEP = 1 << 62  # the optimizers' step counter is an int64 inside the kernels


def training_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint that --resume can continue (its recorded options among them), every
    resume field checked (`check_resume_meta`)."""
    meta = load_checkpoint(path)[1]
    if meta.get("role") != "latest":
        raise CharrnnError(f"{path} holds no training state (is it a .best.npz?); resume from the -o file")
    check_resume_meta(path, meta)
    return meta


def check_resume_meta(path: str | Path, meta: dict[str, Any]) -> None:
    """CharrnnError naming the field when the resume state a checkpoint records is of the wrong type or
    out of range (JSON may hold anything anywhere: a string step, a negative learning rate, NaN)."""

    def integer(value: Any) -> bool:
        return type(value) is int

    def number(value: Any) -> bool:
        return type(value) in (int, float) and math.isfinite(value)

    rules = {
        "step": (lambda v: integer(v) and 0 <= v < MAX_STEP, "an integer in [0, 2^62)"),
        "epoch": (lambda v: integer(v) and 0 <= v < MAX_STEP, "an integer >= 0"),
        "chunk": (lambda v: integer(v) and 0 <= v < MAX_STEP, "an integer >= 0"),
        "lr": (lambda v: number(v) and v > 0, "a positive finite number"),
        "best_val_loss": (lambda v: v is None or (number(v) and v >= 0), "null or a finite number >= 0"),
        "elapsed": (lambda v: number(v) and v >= 0, "a finite number >= 0"),
        "evals_since_best": (lambda v: integer(v) and v >= 0, "an integer >= 0"),
        "train_hash": (lambda v: isinstance(v, str), "a string"),
        "rng_state": (lambda v: v is None or isinstance(v, dict), "null or an object"),
        "train_config": (lambda v: isinstance(v, dict), "an object"),
        "data_config": (lambda v: isinstance(v, dict), "an object"),
    }
    required = ("step", "epoch", "chunk", "lr", "train_config")
    for name, (valid, rule) in rules.items():
        if name not in meta:
            if name in required:
                raise CharrnnError(f"{path}: resume state field {name} is missing")
            continue
        if not valid(meta[name]):
            raise CharrnnError(f"{path}: resume state field {name} must be {rule}, got {meta[name]!r}"[:300])
    for key, cls in STORED.items():
        for name, kind in typing.get_type_hints(cls).items():
            if name in meta.get(key, {}) and not _of_type(meta[key][name], kind):
                raise CharrnnError(f"{path}: recorded option {key}.{name} must be {_type_name(kind)}, got "
                                   f"{meta[key][name]!r}"[:300])  # fmt: skip
        known = {name: value for name, value in meta.get(key, {}).items() if name in option_specs(cls)}
        try:
            check_values(cls, known)
        except OptionError as error:
            raise CharrnnError(f"{path}: recorded option {error}"[:300]) from None


def _of_type(value: Any, kind: Any) -> bool:
    """Whether a JSON value fits a config field's annotation (int, float, str, X | None, tuple[float, ...])."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return any(_of_type(value, option) for option in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if typing.get_origin(kind) is tuple:
        return isinstance(value, list) and all(_of_type(item, float) for item in value)
    if kind is float:
        return type(value) in (int, float)
    return type(value) is kind


def _type_name(kind: Any) -> str:
    return str(kind).replace("<class '", "").replace("'>", "").replace("NoneType", "null")


def resume_state(path: str | Path, vocab: Vocab, config: Any, train_hash: str) -> tuple[Model, TrainState]:
    """Model and TrainState of a "latest" checkpoint, after checking it fits this corpus and config."""
    model, meta, arrays = load_checkpoint(path)
    if meta.get("role") == "latest":
        check_resume_meta(path, meta)
    if model.vocab != vocab:
        raise CharrnnError(f"{path}: the checkpoint's vocabulary differs from this corpus's; use the same corpus")
    if meta.get("role") != "latest":
        raise CharrnnError(f"{path} holds no training state (is it a .best.npz?); resume from the -o file")
    if meta.get("train_hash") != train_hash:
        raise CharrnnError(f"{path} was trained on a different training text; resume needs the same corpus")
    saved = meta["train_config"]
    for option, key in (("--optimizer", "optimizer"), ("--batch-size", "batch_size"), ("--seq-len", "seq_len")):
        if saved.get(key) != getattr(config, key):
            raise CharrnnError(f"{path} was trained with {option} {saved.get(key)}; a resumed run cannot change it "
                               f"(leave {option} out to continue with {saved.get(key)})")
    slots = {}
    for slot in optimizer_slots(config.optimizer):
        value = arrays.get(f"optim.{slot}")
        if value is None or value.shape != model.flat.shape:
            raise CharrnnError(f"{path}: optimizer state optim.{slot} is missing or has the wrong shape")
        slots[slot] = value.astype(model.dtype)
    hidden = arrays.get("hidden")
    if hidden is not None and hidden.shape[1] != config.batch_size:
        raise CharrnnError(f"{path}: array 'hidden' holds {hidden.shape[1]} streams, but the run has --batch-size "
                           f"{config.batch_size}")  # fmt: skip
    state = TrainState(
        step=int(meta["step"]), epoch=int(meta["epoch"]), chunk=int(meta["chunk"]), lr=float(meta["lr"]),
        best_val_loss=meta.get("best_val_loss"), hidden=arrays.get("hidden"), optimizer=slots,
        rng_state=meta.get("rng_state"), train_hash=train_hash, elapsed=float(meta.get("elapsed", 0.0)),
        evals_since_best=int(meta.get("evals_since_best", 0)),
    )  # fmt: skip
    return model, state


def check_replaceable(output: str | Path, resume: str | Path | None = None, force: bool = False) -> None:
    """A fresh run must never silently replace trained work: refuse when `output` or the files beside it
    (<stem>.best.npz, <stem>.metrics.jsonl) exist, unless `force` or `output` is the checkpoint being
    resumed. The message says what would be replaced."""
    output = Path(output)
    if force or (resume is not None and output.exists() and output.resolve() == Path(resume).resolve()):
        return
    existing = [path for path in (output, best_path(output), metrics_path(output)) if path.is_file()]
    if not existing:
        return
    what = ""
    if output.is_file():
        try:
            meta = load_checkpoint(output)[1]
        except CharrnnError:
            what = " (not a charrnn checkpoint)"
        else:
            best = meta.get("best_val_loss")
            what = f" (a checkpoint trained {meta.get('step', 0)} steps" + (
                f", best validation {best / 0.6931471805599453:.4f} bits/char)" if best is not None else ")")
    others = [path.name for path in existing if path != output]
    replaced = "it" if output.is_file() else str(output)
    replaced += "".join(f", {name}" for name in others[:-1]) + (f" and {others[-1]}" if others else "")
    raise CharrnnError(f"{output} exists{what}; a fresh run would replace {replaced}: use --force to replace, "
                       f"--resume {output} to continue it, or another -o")  # fmt: skip


def check_writable(output: Path) -> None:
    """Fail before training, not after an hour of it, if the checkpoint cannot be written."""
    directory = output.parent if str(output.parent) else Path(".")
    if not directory.is_dir():
        raise CharrnnError(f"cannot write {output}: directory {directory} does not exist")
    if output.is_dir():
        raise CharrnnError(f"cannot write {output}: it is a directory")
    if output.exists() and not output.is_file():
        raise CharrnnError(f"cannot write {output}: it is not a regular file (a device, FIFO or socket)")
    probe = directory / f".{output.name}.probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CharrnnError(f"cannot write {output}: {error.strerror}") from None
