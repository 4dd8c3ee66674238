"""The evaluation log (`<stem>.metrics.jsonl`) and the learning curves drawn from it.

Each evaluation appends one JSON object on its own line:

    {"step": 400, "epoch": 1, "elapsed_seconds": 83.2, "lr": 0.002, "train_nats_per_char": 1.71,
     "val_nats_per_char": 1.80, "val_bits_per_char": 2.60, "chars_per_second": 51234.0, "best": true}

`train_nats_per_char` is the mean training loss of the steps since the previous evaluation,
`val_nats_per_char` the validation loss and `val_bits_per_char` the same in bits (both null without
validation text), `elapsed_seconds` the seconds of training across all runs (resumes included); the
names follow the JSON convention of docs/json.md. A fresh run replaces the file at its first evaluation
(not before: a run that fails early leaves the history as it was); `--resume` keeps the lines up to the
resumed step and appends. Files written before the convention (`elapsed`, `train_loss`,
`val_loss`, `val_bpc`) are read with their keys renamed. A documents run (`--documents`) also records
`val_nats_per_document`; its per-character figures count the end symbol, and its `chars_per_second`
counts real characters (not padding).

`curves_png` draws training and validation loss against steps and against time (needs matplotlib:
`pip install 'charrnn[plot]'`); `terminal_plot` draws a compact character plot with no dependency.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .atomic import write_bytes_atomic
from .errors import CharrnnError

OLD_KEYS = {"elapsed": "elapsed_seconds", "train_loss": "train_nats_per_char", "val_loss": "val_nats_per_char",
            "val_bpc": "val_bits_per_char"}  # fmt: skip
X_KEYS = {"step": "step", "elapsed": "elapsed_seconds"}
MAX_PLOT = (1000, 500)  # columns, lines: larger than any terminal, small enough to draw instantly


class MetricsLog:
    """Appends evaluation records to a JSON-lines file, one flushed line per record.

    Nothing is written until the first record: a run that fails before its first evaluation leaves the
    existing log as it was. The first record replaces the file atomically with the kept history plus
    itself; later records are appended."""

    def __init__(self, path: str | Path, keep_upto_step: int | None = None, source: str | Path | None = None):
        """A log at `path` that starts empty (a fresh run), or with the records of `source` (default
        `path`; a resumed run's own log) whose step is <= `keep_upto_step` (later lines belong to a run
        that never saved them)."""
        self.path = Path(path)
        self.source = Path(source) if source is not None else self.path
        self.keep_upto_step = keep_upto_step
        self.started = False

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        if not self.started:
            kept = []
            if self.keep_upto_step is not None and self.source.exists():
                kept = [r for r in read_metrics(self.source, lenient=True) if r.get("step", 0) <= self.keep_upto_step]
            write_bytes_atomic(self.path, "".join([*(json.dumps(r) + "\n" for r in kept), line]).encode("utf-8"))
            self.started = True
            return
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as error:
            raise CharrnnError(f"cannot write {self.path}: {error.strerror}") from None


def read_metrics(path: str | Path, lenient: bool = False) -> list[dict[str, Any]]:
    """The records of a metrics file, in order. A last line without its newline that is not a record is
    an append cut short (the process was killed) and is left out; `lenient` leaves out every line that is
    not a record instead of raising."""
    path = Path(path)
    if not path.exists():
        raise CharrnnError(f"metrics file {path} does not exist (it is written during training beside the model)")
    records = []
    try:
        content = path.read_text(encoding="utf-8", errors="strict" if not lenient else "replace")
    except (OSError, UnicodeDecodeError) as error:
        raise CharrnnError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    lines = content.splitlines()
    torn = len(lines) if content and not content.endswith("\n") else None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if lenient or number == torn:
                continue
            raise CharrnnError(f"{path}: line {number} is not valid JSON") from None
        if not isinstance(record, dict) or type(record.get("step")) is not int:
            if lenient or number == torn:
                continue
            raise CharrnnError(f"{path}: line {number} is not a metrics record (no integer 'step')")
        records.append({OLD_KEYS.get(key, key): value for key, value in record.items()})
    return records


def find_metrics(model_or_metrics: str | Path) -> Path:
    """A metrics file given itself or the model it belongs to (`m.npz` or `m.best.npz` -> m.metrics.jsonl)."""
    path = Path(model_or_metrics)
    if path.name.endswith(".jsonl"):
        return path
    stem = path.stem[: -len(".best")] if path.stem.endswith(".best") else path.stem
    return path.with_name(f"{stem}.metrics.jsonl")


def series(records: list[dict[str, Any]], x: str) -> dict[str, list[tuple[float, float]]]:
    """{"train": [(x, nats)], "validation": [(x, nats)]} with x = "step" or "elapsed"; missing or
    non-finite values are left out."""
    if x not in ("step", "elapsed"):
        raise CharrnnError(f"x axis must be step or time, got {x!r}")
    out: dict[str, list[tuple[float, float]]] = {"train": [], "validation": []}
    for record in records:
        for name, key in (("train", "train_nats_per_char"), ("validation", "val_nats_per_char")):
            value, at = record.get(key), record.get(X_KEYS[x])
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, at))
            if numbers and math.isfinite(value) and math.isfinite(at):
                out[name].append((float(at), float(value)))
    return out


MARKERS = {"unicode": {"train": "•", "validation": "◆"}, "ascii": {"train": "*", "validation": "o"}}
AXES = {"unicode": ("│", "└", "─"), "ascii": ("|", "+", "-")}


def terminal_plot(records: list[dict[str, Any]], x: str = "step", width: int = 64, height: int = 12,
                  ascii_only: bool = False) -> str:  # fmt: skip
    """Training and validation loss (nats/char) against `x` ("step" or "elapsed") as lines of text."""
    if not (8 <= width <= MAX_PLOT[0] and 3 <= height <= MAX_PLOT[1]):
        raise CharrnnError(f"plot size must be from 8 x 3 to {MAX_PLOT[0]} x {MAX_PLOT[1]}, got {width} x {height}")
    data = series(records, x)
    points = data["train"] + data["validation"]
    if not points:
        raise CharrnnError("the metrics file has no losses to plot yet (no evaluation has finished)")
    style = "ascii" if ascii_only else "unicode"
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    grid = [[" "] * width for _ in range(height)]
    for name in ("train", "validation"):  # validation drawn last: it stays visible where they meet
        for px, py in data[name]:
            col = round((px - x_lo) / (x_hi - x_lo) * (width - 1)) if x_hi > x_lo else 0
            row = round((y_hi - py) / (y_hi - y_lo) * (height - 1)) if y_hi > y_lo else height // 2
            grid[row][col] = MARKERS[style][name]
    vertical, corner, horizontal = AXES[style]
    label_width = max(len(f"{y_hi:.3f}"), len(f"{y_lo:.3f}"))
    unit = "step" if x == "step" else "seconds"
    legend = (
        f"loss (nats/char) vs {unit}:  {MARKERS[style]['train']} training  {MARKERS[style]['validation']} validation"
    )
    lines = [legend]
    for row in range(height):
        label = f"{y_hi:.3f}" if row == 0 else f"{y_lo:.3f}" if row == height - 1 else ""
        lines.append(f"{label:>{label_width}} {vertical}{''.join(grid[row]).rstrip()}")
    lines.append(" " * label_width + " " + corner + horizontal * width)
    left, right = _tick(x_lo, x), _tick(x_hi, x)
    lines.append(" " * (label_width + 2) + left + " " * max(1, width - len(left) - len(right)) + right)
    return "\n".join(lines)


def _tick(value: float, x: str) -> str:
    return f"{int(value)}" if x == "step" else f"{value:.0f}s"


def curves_png(records: list[dict[str, Any]], output: str | Path, title: str = "") -> Path:
    """Write a PNG with loss against steps (left) and against time (right). Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise CharrnnError("drawing a PNG needs matplotlib: pip install 'charrnn[plot]'") from None
    output = Path(output)
    if not any(series(records, "step").values()):
        raise CharrnnError("the metrics file has no losses to plot yet (no evaluation has finished)")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, x, label in ((axes[0], "step", "step"), (axes[1], "elapsed", "training time (s)")):
        for name, style in (("train", "-"), ("validation", "o-")):
            points = series(records, x)[name]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], style, label=name, markersize=3)
        ax.set_xlabel(label)
        ax.set_ylabel("loss (nats/char)")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    try:
        figure.savefig(output, format="png", dpi=100)
    except OSError as error:
        raise CharrnnError(f"cannot write {output}: {error.strerror or error}") from None
    finally:
        plt.close(figure)
    return output
