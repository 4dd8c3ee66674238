"""Where a training run starts: fresh, resumed (`--resume`), or fine-tuned from a trained model (`--init-from`).

`prepare_run` turns the corpus and run options into what `train.train` needs: the encoded corpus (through
the id cache), the vocabulary, and either the architecture of a fresh model or the model to start from.
Architecture options given with `--resume` or `--init-from` are ignored with a note (the checkpoint's
architecture wins). Fine-tuning may extend the model's vocabulary (finetune.extend_vocab); otherwise
characters the vocabulary lacks follow the unknown-character policy (vocab.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .data import PreparedData, prepare_data
from .errors import CharrnnError
from .finetune import extend_vocab
from .model import Model, ModelConfig, load_checkpoint
from .vocab import Vocab, describe_char


@dataclass(frozen=True)
class RunStart:
    """What `train.train` needs besides the TrainConfig."""

    data: PreparedData
    model_config: ModelConfig | None  # a fresh run's architecture
    init_model: Model | None  # fine-tuning: the (possibly extended) starting model
    notes: list[str]  # for the user: files used and skipped, ignored options, added or skipped characters


ARCHITECTURE_OPTIONS = {"hidden_size": "--hidden", "num_layers": "--layers", "activation": "--activation",
                        "dtype": "--dtype"}  # fmt: skip


def prepare_run(
    corpus: list[str | Path],
    architecture: dict[str, object],
    resume: str | Path | None = None,
    init_from: str | Path | None = None,
    extend: bool = False,
    unk: str = "error",
    seed: int = 1234,
    **data_options,
) -> RunStart:
    """Encode the corpus and choose the starting point.

    `architecture`: ModelConfig fields the user gave (None: not given; a fresh run uses the defaults).
    They are ignored, with a note, when resuming or fine-tuning (the checkpoint's architecture wins).
    `data_options` go to `prepare_data` (val_frac, val_file, encoding, errors, cache_dir, progress, ...).
    """
    if resume is not None and init_from is not None:
        raise CharrnnError("--resume and --init-from exclude each other (resume continues a run; init-from starts one)")
    if extend and init_from is None:
        raise CharrnnError("--extend-vocab needs --init-from (a fresh run's vocabulary is the corpus's own)")
    source = resume if resume is not None else init_from
    if source is None:
        data = prepare_data(corpus, **data_options)
        given = {name: value for name, value in architecture.items() if value is not None}
        return RunStart(data, ModelConfig(len(data.vocab), **given), None, list(data.notes))
    base = load_checkpoint(source)[0]
    verb = "resuming" if resume is not None else "fine-tuning"
    notes = [
        f"{ARCHITECTURE_OPTIONS[name]} {value} ignored: {verb} keeps the model's "
        f"{ARCHITECTURE_OPTIONS[name].lstrip('-')} ({getattr(base.config, name)})"
        for name, value in architecture.items()
        if value is not None and value != getattr(base.config, name)
    ]
    extended: list[Model] = []

    def vocab_for(chars: str) -> Vocab:
        extended.append(extend_vocab(base, chars, seed))
        return extended[0].vocab

    data = prepare_data(corpus, vocab=vocab_for if extend else base.vocab, unk=unk, **data_options)
    model = extended[0] if extend else base
    notes[:0] = data.notes
    added = "".join(c for c in model.vocab.chars if c not in base.vocab)
    if added:
        names = ", ".join(describe_char(c) for c in added)
        notes.append(f"added {len(added)} character(s) to the vocabulary: {names}")
    if data.unknown.counts:
        action = "skipped" if unk == "skip" else f"mapped to {describe_char(unk)}"
        notes.append(f"{data.unknown.total} character(s) not in the vocabulary {action}: {data.unknown.summary()}")
    if init_from is not None:
        notes.append(f"fine-tuning from {init_from}: {base.config.num_layers} x {base.config.hidden_size} "
                     f"{base.config.activation}, vocabulary {len(base.vocab)} -> {len(model.vocab)}")  # fmt: skip
    return RunStart(data, None, model if init_from is not None else None, notes)
