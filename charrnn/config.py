"""Every option of a training run, defined once: its default, its validation rule and its help text.

One frozen dataclass per concern:

    ModelConfig    architecture (stored in every checkpoint; a resumed or fine-tuned run keeps it)
    TrainConfig    optimisation and the run's budget (stored in training checkpoints)
    DataConfig     how the corpus is decoded and split (stored in training checkpoints)
    PreviewConfig  the samples shown while training (display only, not stored)

A field the command line exposes carries an `Option` in its metadata: flag, help, rule, help section and
how it behaves on `--resume`. `charrnn train` builds its options from these (charrnn/cli/options.py), and
`__post_init__` applies the rules whether the values come from the command line, Python or a checkpoint,
so a bad value is refused before any corpus is read.

Resuming (`resume_options`): every stored option continues with its recorded value unless the user gives
it again; the options given that differ from the record are reported. The stopping budget (`--steps`,
`--epochs`, `--time`) is one decision: giving any of them replaces the whole recorded budget.

This module imports nothing heavy (no numpy, no numba): `charrnn --help` reads it.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import OptionError

ACTIVATIONS = ("tanh", "relu")
DTYPES = ("float32", "float64")
OPTIMIZERS = ("adam", "rmsprop", "adagrad", "sgd")
LR_SCHEDULES = ("cosine", "constant")
DECODE_ERRORS = ("strict", "replace")
UNK_POLICIES = ("error", "skip")
MAX_PREVIEW = 100_000  # characters of a training-time sample: each evaluation waits for it
MAX_SEED = 1 << 53  # seeds are exact in JSON readers that hold numbers as doubles (jq, JavaScript)


@dataclass(frozen=True)
class Option:
    """How one config field appears to users. `flag` None: a library-only field (no command-line option)."""

    flag: str | None
    help: str = ""
    valid: Callable[[Any], bool] | None = None  # None-valued optional fields are not checked
    rule: str = ""  # what `valid` demands, completing "--flag ... , got X"
    choices: tuple[str, ...] = ()
    panel: str = ""  # help section
    shown_default: str | None = None  # the default as help shows it (None: the field's default)
    path: bool = False  # the value names a file
    parse: Callable[[str], Any] | None = None  # the command line gives a string; this makes the value
    inherit: bool = True  # on --resume, keep the recorded value unless given
    budget: bool = False  # one of --steps/--epochs/--time: inherited together

    @property
    def label(self) -> str:
        return self.flag or "value"

    def check(self, value: Any) -> None:
        if self.choices and value not in self.choices:
            raise OptionError(f"{self.label} must be one of {', '.join(self.choices)}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # nan passes no rule; inf would pass many
            raise OptionError(f"{self.label} must be a finite number, got {value!r}")
        if value is not None and self.valid is not None and not self.valid(value):
            shown = list(value) if isinstance(value, tuple) else value
            raise OptionError(f"{self.label} {self.rule}, got {shown!r}")


def option(default: Any, flag: str | None, help: str = "", **spec: Any) -> Any:
    """A dataclass field with its `Option` (see the module docstring)."""
    return field(default=default, metadata={"option": Option(flag, help, **spec)})


def at_least(bound: int) -> dict[str, Any]:
    return {"valid": lambda value: value >= bound, "rule": f"must be >= {bound}"}


def positive() -> dict[str, Any]:
    return {"valid": lambda value: value > 0 and math.isfinite(value), "rule": "must be a positive number"}


def between(low: float, high: float, high_open: bool = False) -> dict[str, Any]:
    closing = ")" if high_open else "]"
    return {"valid": lambda value: low <= value < high if high_open else low <= value <= high,
            "rule": f"must be in [{low:g}, {high:g}{closing}"}  # fmt: skip


def validate(config: Any) -> None:
    """Check every field of a config dataclass against its Option (raises OptionError)."""
    for spec, value in _specs_and_values(config):
        spec.check(value)


def check_values(cls: type, values: Mapping[str, Any]) -> None:
    """Check some fields of `cls` (name -> value) without building it (e.g. ModelConfig before the
    vocabulary size is known)."""
    specs = option_specs(cls)
    for name, value in values.items():
        if value is not None:
            specs[name].check(value)


def option_specs(cls: type) -> dict[str, Option]:
    """Field name -> Option, in field order (fields without an Option left out)."""
    return {f.name: f.metadata["option"] for f in fields(cls) if "option" in f.metadata}


def _specs_and_values(config: Any):
    for name, spec in option_specs(type(config)).items():
        yield spec, getattr(config, name)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. `vocab_size` comes from the vocabulary; the rest from the user."""

    vocab_size: int
    hidden_size: int = option(512, "--hidden", "Hidden units per layer.", panel="Architecture", **at_least(1))
    num_layers: int = option(2, "--layers", "Stacked Elman layers.", panel="Architecture", **at_least(1))
    activation: str = option("tanh", "--activation", "Hidden activation.", choices=ACTIVATIONS, panel="Architecture")
    dtype: str = option("float32", "--dtype", "Floating-point type of weights and arithmetic.", choices=DTYPES,
                        panel="Architecture")  # fmt: skip

    def __post_init__(self) -> None:
        if self.vocab_size < 1:
            raise OptionError(f"vocabulary size must be >= 1, got {self.vocab_size}")
        validate(self)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        V, H, L = self.vocab_size, self.hidden_size, self.num_layers
        return {"Wx": (V, H), "Wu": (L - 1, H, H), "Wh": (L, H, H), "bh": (L, H), "Wy": (H, V), "by": (V,)}

    @property
    def activation_code(self) -> int:
        """The kernels' activation flag: float64 uses exact libm tanh (gradient checks), float32 the
        vectorised approximation (|error| < 3e-7, below float32 resolution near ±1)."""
        from . import kernels  # here, not at the top: the options must not import numba

        if self.activation == "relu":
            return kernels.ACT_RELU
        return kernels.ACT_TANH_EXACT if self.dtype == "float64" else kernels.ACT_TANH


OPT, BUDGET, DATA, RUN = "Optimisation", "Budget and evaluation", "Data", "Run"


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimisation, the run's budget, evaluation (the architecture is in ModelConfig)."""

    seq_len: int = option(64, "--seq-len", "Characters per chunk (truncated BPTT length).", panel=OPT, **at_least(1))
    batch_size: int = option(64, "--batch-size", "Parallel streams per step.", panel=OPT, **at_least(1))
    lr: float = option(2e-3, "--lr", "Learning rate.", panel=OPT, **positive())
    optimizer: str = option("adam", "--optimizer", "Optimizer (sgd uses --momentum).", choices=OPTIMIZERS, panel=OPT)
    momentum: float = option(0.9, "--momentum", "Momentum for sgd.", panel=OPT, **between(0, 1, high_open=True))
    beta1: float = option(0.9, None)  # Adam
    beta2: float = option(0.999, None)  # Adam
    rms_decay: float = option(0.95, None)  # RMSprop, as in char-rnn
    eps: float = option(1e-8, None)
    weight_decay: float = option(0.0, "--weight-decay", "L2 weight decay (decoupled for adam).", panel=OPT,
                                 valid=lambda v: v >= 0, rule="must be >= 0")  # fmt: skip
    dropout: float = option(0.25, "--dropout", "Drop probability on non-recurrent connections.", panel=OPT,
                            **between(0, 1, high_open=True))  # fmt: skip
    clip: float = option(5.0, "--clip", "Clip gradients to this global norm (0: off).", panel=OPT,
                         valid=lambda v: v >= 0, rule="must be >= 0")  # fmt: skip
    clip_value: float = option(0.0, "--clip-value", "Clamp each gradient element to ±this (0: off).", panel=OPT,
                               valid=lambda v: v >= 0, rule="must be >= 0")  # fmt: skip
    lr_decay: float = option(1.0, "--lr-decay", "Multiply the learning rate by this each epoch.", panel=OPT,
                             valid=lambda v: 0 < v <= 1, rule="must be in (0, 1]")  # fmt: skip
    lr_schedule: str = option("cosine", "--lr-schedule", "cosine (decay to --lr-floor over the run's "
                              "steps/epochs/time) or constant.", choices=LR_SCHEDULES, panel=OPT)  # fmt: skip
    lr_floor: float = option(0.05, "--lr-floor", "Where the cosine schedule ends, as a fraction of --lr.", panel=OPT,
                             **between(0, 1))  # fmt: skip
    epochs: float | None = option(None, "--epochs", "Stop after this many epochs.", panel=BUDGET, budget=True,
                                  valid=lambda v: v > 0, rule="must be > 0", shown_default="50 without --steps/--time")
    steps: int | None = option(None, "--steps", "Stop when the model has this many steps in all (resumed steps "
                               "included).", panel=BUDGET, budget=True, valid=lambda v: v > 0,
                               rule="must be > 0")  # fmt: skip
    time_budget: float | None = option(None, "--time", "Stop after this many seconds of this run.", panel=BUDGET,
                                       budget=True, valid=lambda v: v > 0, rule="must be > 0")  # fmt: skip
    eval_every: int = option(200, "--eval-every", "Evaluate and checkpoint every this many steps.", panel=BUDGET,
                             **at_least(1))  # fmt: skip
    seed: int = option(1234, "--seed", "Random seed (initialisation, dropout masks).", panel=OPT,
                       valid=lambda v: 0 <= v < MAX_SEED, rule="must be in [0, 2^53)")  # fmt: skip
    threads: int = option(0, "--threads", "Threads for BLAS and kernels (0: all cores).", panel=RUN, inherit=False,
                          valid=lambda v: v >= 0, rule="must be >= 0")  # fmt: skip
    patience: int | None = option(None, "--patience", "Stop after this many evaluations without a better validation "
                                  "loss.", panel=BUDGET, **at_least(1))  # fmt: skip
    sample_every: int | None = option(None, "--sample-every", "Show samples every this many steps (0: never).",
                                      panel=RUN, shown_default="at each evaluation", valid=lambda v: v >= 0,
                                      rule="must be >= 0")  # fmt: skip
    val_max_chars: int = option(1_000_000, "--val-max-chars", "Evaluate on at most this many validation characters.",
                                panel=DATA, **at_least(2))  # fmt: skip
    max_rollbacks: int = option(5, None, **at_least(1))  # divergence guard: rollbacks in a row before giving up

    def __post_init__(self) -> None:
        validate(self)


def _known_encoding(name: str) -> bool:
    """A text codec Python knows (base64, zlib or rot13 are codecs too, but not bytes -> text)."""
    try:
        info = codecs.lookup(name)
    except (LookupError, TypeError, ValueError):
        return False
    return getattr(info, "_is_text_encoding", True)


def _unk_option(value: str) -> bool:
    return value in UNK_POLICIES or len(value) == 1 or (value.startswith("map:") and len(value) == 5) or (
        value == "map:\\n")  # fmt: skip


@dataclass(frozen=True)
class DataConfig:
    """How the corpus becomes training and validation ids."""

    val_frac: float = option(0.1, "--val-frac", "Fraction of the text (its tail) held out for validation.",
                             panel=DATA, **between(0, 1, high_open=True))  # fmt: skip
    val_file: str | None = option(None, "--val-file", "Validate on this file instead of a tail split.", panel=DATA,
                                  path=True)  # fmt: skip
    encoding: str = option("utf-8", "--encoding", "Text encoding of the corpus.", panel=DATA, valid=_known_encoding,
                           rule="is not a text encoding Python knows (utf-8, latin-1, cp1252, ...)")  # fmt: skip
    errors: str = option("strict", "--errors", "strict: invalid bytes are an error; replace: accept them as U+FFFD.",
                         choices=DECODE_ERRORS, panel=DATA)  # fmt: skip
    unk: str = option("error", "--unk", "Characters missing from an --init-from/--resume vocabulary: error, skip or "
                      "map:<char>.", panel=DATA, valid=_unk_option,
                      rule="must be error, skip or map:<char>")  # fmt: skip
    documents: str | None = option(
        None, "--documents", "Train on independent documents split by: lines, blank-lines, or a separator string (\\n "
        "escapes). Each starts from a fresh state and ends with an end symbol; own defaults (README 'Documents').",
        panel=DATA, valid=lambda value: value is None or bool(value), rule="must be lines, blank-lines or a separator",
    )  # fmt: skip
    val_docs: int | None = option(None, "--val-docs", "With --documents: hold out this many random whole documents "
                                  "for validation (instead of --val-frac of them).", panel=DATA,
                                  valid=lambda value: value is None or value >= 0, rule="must be >= 0")  # fmt: skip

    def __post_init__(self) -> None:
        validate(self)


def parse_temperatures(text: str) -> tuple[float, ...]:
    """'0.5,1.0' -> (0.5, 1.0)."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise OptionError(f"--sample-temperatures must be comma-separated numbers, got {text!r}") from None


@dataclass(frozen=True)
class PreviewConfig:
    """Samples shown while training (when: TrainConfig.sample_every)."""

    length: int = option(200, "--sample-length", "Characters per sample shown while training.", panel=RUN,
                         valid=lambda v: 1 <= v <= MAX_PREVIEW, rule=f"must be in [1, {MAX_PREVIEW:,}] (a preview "
                         "shown in the log; charrnn sample streams any length)")  # fmt: skip
    temperatures: tuple[float, ...] = option(
        (0.5, 1.0), "--sample-temperatures", "Comma-separated temperatures of the samples shown while training.",
        panel=RUN, parse=parse_temperatures, shown_default="0.5,1.0", rule="must be positive numbers",
        valid=lambda values: bool(values) and all(t > 0 and math.isfinite(t) for t in values),
    )  # fmt: skip

    def __post_init__(self) -> None:
        validate(self)


STORED = {"train_config": TrainConfig, "data_config": DataConfig}  # checkpoint meta key -> config class


@dataclass(frozen=True)
class ResolvedOptions:
    """A run's options after merging what was given with what a resumed checkpoint recorded."""

    train: TrainConfig
    data: DataConfig
    overrides: list[str]  # "--lr 0.001 (recorded: 0.002)" for each given option that differs from the record


def resume_options(given: Mapping[type, Mapping[str, Any]], recorded: Mapping[str, Any] | None) -> ResolvedOptions:
    """TrainConfig and DataConfig for a run. `given`: class -> {field: value} of the options the user gave
    (absent: not given). `recorded`: the resumed checkpoint's metadata, or None for a fresh run.

    A field not given takes the recorded value (when its Option inherits and the record has it), else the
    default. Giving any budget field (--steps/--epochs/--time) replaces the whole recorded budget.
    """
    built, overrides = {}, []
    for key, cls in STORED.items():
        mine = dict(given.get(cls, {}))
        check_values(cls, mine)
        old = dict((recorded or {}).get(key) or {})
        specs = option_specs(cls)
        budget_given = any(specs[name].budget for name in mine if name in specs)
        values = {}
        for f in fields(cls):
            spec = specs.get(f.name)
            if f.name in mine:
                values[f.name] = mine[f.name]
                if f.name in old and old[f.name] != mine[f.name] and spec is not None and spec.flag:
                    overrides.append(f"{spec.flag} {_show(mine[f.name])} (recorded: {_show(old[f.name])})")
            elif f.name in old and (spec is None or (spec.inherit and not (spec.budget and budget_given))):
                values[f.name] = old[f.name]
        built[cls] = cls(**values)
    train, data = built[TrainConfig], built[DataConfig]
    if train.patience is not None and data.val_frac == 0 and data.val_file is None:
        raise OptionError("--patience needs validation text (--val-frac > 0 or --val-file)")
    return ResolvedOptions(train, data, overrides)


def _show(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def stored_configs(train: TrainConfig, data: DataConfig) -> dict[str, dict[str, Any]]:
    """The checkpoint metadata that `resume_options` reads back."""
    return {"train_config": asdict(train), "data_config": asdict(data)}
