"""Series data: the seed's generator, reading and writing series files, splits and learning tasks.

Shapes as the seed states them: a set of series is (N, L) values (one series a row, univariate), and
a task cuts each row into inputs X (N, W, 1) — the first W values — and targets: the next K values
y (N, K) (sequence to vector), or at every step t the K values after it, y (N, W, K) (sequence to
sequence). One long series becomes rows by sliding a window of W + K values along it.

Files: `.npz` as `charrnn series generate` writes it (arrays train/valid/test (N, L) and a JSON `meta`),
or CSV: one series per row, or (with a window) one long series in one column or one row. A first line
with any non-numeric cell is a header. Every problem (ragged rows, a cell that is not a number, NaN/inf,
an empty file, a window longer than the series) is one CharrnnError naming the file, line and column.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_writer
from ..errors import CharrnnError

SEED_SPLIT = (0.7, 0.2, 0.1)  # the seed's 7,000 / 2,000 / 1,000 of 10,000
DATA_FORMAT = "charrnn-series-data"


def generate_time_series(batch_size: int, n_steps: int, seed: int | None = None) -> np.ndarray:
    """The seed's generator, seeded: (batch_size, n_steps, 1) float32.

    Each series is 0.5·sin((t − o1)·(10·f1 + 10)) + 0.2·sin((t − o2)·(20·f2 + 20)) + 0.1·(U − 0.5) over
    t = linspace(0, 1, n_steps), with f1, f2, o1, o2 ~ U(0, 1) per series and U ~ U(0, 1) per value
    (drawn in the seed's order: f1, f2, o1, o2, then the noise)."""
    if batch_size < 1 or n_steps < 2:
        raise CharrnnError(f"need at least 1 series of 2 steps, got {batch_size} of {n_steps}")
    rng = np.random.default_rng(seed)
    freq1, freq2, offsets1, offsets2 = rng.random((4, batch_size, 1))
    time = np.linspace(0, 1, n_steps)
    series = 0.5 * np.sin((time - offsets1) * (freq1 * 10 + 10))
    series += 0.2 * np.sin((time - offsets2) * (freq2 * 20 + 20))
    series += 0.1 * (rng.random((batch_size, n_steps)) - 0.5)
    return series[..., np.newaxis].astype(np.float32)


@dataclass
class SeriesData:
    """Three splits of univariate series, (N, L) each, and where they came from."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    source: dict[str, Any]

    @property
    def length(self) -> int:
        return self.train.shape[1]

    def split(self, name: str) -> np.ndarray:
        if name not in ("train", "valid", "test"):
            raise CharrnnError(f"split must be train, valid or test, got {name!r}")
        return getattr(self, name)


def split_rows(series: np.ndarray, fractions: tuple[float, float, float] = SEED_SPLIT) -> tuple[np.ndarray, ...]:
    """Consecutive train / valid / test rows in the given proportions (the seed: first 70%, next 20%, rest)."""
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise CharrnnError(f"--split needs three fractions that sum to 1, got {','.join(map(str, fractions))}")
    n = len(series)
    first, second = round(n * fractions[0]), round(n * (fractions[0] + fractions[1]))
    parts = series[:first], series[first:second], series[second:]
    if len(parts[0]) < 1 or (fractions[1] > 0 and len(parts[1]) < 1):
        raise CharrnnError(f"{n} series are too few to split {fractions[0]:g}/{fractions[1]:g}/{fractions[2]:g}")
    return parts


def generate_data(n_series: int = 10_000, n_steps: int = 51, seed: int | None = None) -> SeriesData:
    """The seed's setup: `n_series` generated series of `n_steps`, split 70/20/10 in order."""
    series = generate_time_series(n_series, n_steps, seed)[..., 0]
    train, valid, test = split_rows(series)
    return SeriesData(train, valid, test, {"generator": "generate_time_series", "seed": seed, "n_steps": n_steps})


# ---- reading ----


def read_csv(path: str | Path) -> np.ndarray:
    """A CSV of numbers as a (rows, columns) float64 array (the header line, if any, skipped)."""
    path = Path(path)
    text = _read_text(path)
    rows: list[list[float]] = []
    width, header = None, False
    for line_number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not cells or all(not c.strip() for c in cells):
            continue  # blank lines
        values = []
        for column, cell in enumerate(cells, start=1):
            try:
                value = float(cell)
            except ValueError:
                if not rows and not header:
                    header = True  # a first line with words is a header
                    break
                raise CharrnnError(
                    f"{path} line {line_number}, column {column}: {cell.strip()!r} is not a number"
                ) from None
            if not math.isfinite(value):
                raise CharrnnError(f"{path} line {line_number}, column {column}: {cell.strip()} is not a finite number")
            values.append(value)
        else:
            if width is None:
                width = len(values)
            elif len(values) != width:
                raise CharrnnError(f"{path} line {line_number} has {len(values)} values; the rows before have "
                                   f"{width} (series in rows must all have the same length)")  # fmt: skip
            rows.append(values)
    if not rows:
        raise CharrnnError(f"{path} has no numbers" + (" (only a header line)" if header else " (empty file)"))
    return np.array(rows)


def read_npz(path: str | Path) -> SeriesData:
    """A file written by `write_npz` (`charrnn series generate`)."""
    path = Path(path)
    if not path.is_file():
        raise CharrnnError(f"data file {path} " + ("is a directory" if path.is_dir() else "does not exist"))
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CharrnnError(f"{path} is not a readable .npz file: {str(error).splitlines()[0]}") from None
    missing = [name for name in ("train", "valid", "test") if name not in arrays]
    if missing:
        raise CharrnnError(f"{path} has no {', '.join(missing)} array (expected a file from `charrnn series generate`)")
    splits = {}
    for name in ("train", "valid", "test"):
        array = arrays[name]
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[..., 0]
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
            raise CharrnnError(f"{path}: array {name} must be numbers of shape (series, steps), got {array.shape}")
        if not np.isfinite(array).all():
            row = int(np.argwhere(~np.isfinite(array))[0][0])
            raise CharrnnError(f"{path}: array {name} holds a non-finite value (NaN or inf) in series {row}")
        splits[name] = array
    lengths = {a.shape[1] for a in splits.values() if a.size}
    if len(lengths) > 1:
        raise CharrnnError(f"{path}: the splits have different series lengths {sorted(lengths)}")
    if splits["train"].shape[0] == 0:
        raise CharrnnError(f"{path}: the train split is empty")
    source = {"file": str(path)}
    if "meta" in arrays:
        try:
            source.update(json.loads(str(arrays["meta"])).get("source", {}))
        except (json.JSONDecodeError, AttributeError):
            pass
    return SeriesData(splits["train"], splits["valid"], splits["test"], source)


def load_data(path: str | Path, window: int | None = None, ahead: int = 1, column: str | None = None,
              split: tuple[float, float, float] = SEED_SPLIT) -> SeriesData:  # fmt: skip
    """Series from an .npz or a CSV file. With `window`, a CSV holds one long series (one column — or the
    named/numbered `column` of several — or one row), cut into rows of window + ahead values; without,
    each CSV row is a series. CSV rows are split in order by `split` (train, valid, test fractions)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        if column is not None:
            raise CharrnnError("--column applies to CSV files only")
        return read_npz(path)
    table = read_csv(path)
    source: dict[str, Any] = {"file": str(path), "split": list(split)}
    if window is None:
        if column is not None:
            raise CharrnnError("--column picks one long series out of a table: give --window too")
        train, valid, test = split_rows(table, split)
        return SeriesData(train, valid, test, source)
    series = one_series(path, table, column)
    length = window + ahead
    if length > series.size:
        raise CharrnnError(f"{path}: --window {window} plus {ahead} step(s) ahead needs {length} values; "
                           f"the series has {series.size}")  # fmt: skip
    rows = np.lib.stride_tricks.sliding_window_view(series, length).copy()
    train, valid, test = split_rows(rows, split)
    source.update({"window": window, "ahead": ahead, "column": column, "values": int(series.size)})
    return SeriesData(train, valid, test, source)


def one_series(path: Path, table: np.ndarray, column: str | None) -> np.ndarray:
    """The long series in a (rows, columns) table: its only column or row, or the chosen column."""
    if column is not None:
        names = _header(path)
        if column in names:
            index = names.index(column)
        elif column.isdigit() and int(column) < table.shape[1]:
            index = int(column)
        else:
            raise CharrnnError(f"{path}: no column {column!r} (columns: {', '.join(names) or table.shape[1]})")
        return table[:, index]
    if table.shape[1] == 1:
        return table[:, 0]
    if table.shape[0] == 1:
        return table[0]
    raise CharrnnError(f"{path} has {table.shape[0]} rows of {table.shape[1]} values: with --window it must hold "
                       "one series (one column or one row), or name one with --column")  # fmt: skip


def _header(path: Path) -> list[str]:
    first = next(csv.reader(io.StringIO(_read_text(path))), [])
    try:
        [float(cell) for cell in first]
        return []
    except ValueError:
        return [cell.strip() for cell in first]


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise CharrnnError(f"data file {path} " + ("is a directory" if path.is_dir() else "does not exist"))
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise CharrnnError(f"{path} is not a UTF-8 text file (byte {error.start}): expected CSV or .npz") from None


# ---- tasks ----


def make_task(series: np.ndarray, window: int, ahead: int = 1, every_step: bool = False) -> tuple[np.ndarray, ...]:
    """Inputs X (N, window, 1): each row's first `window` values; targets the `ahead` values after them,
    y (N, ahead), or, `every_step`, the `ahead` values after each input step, y (N, window, ahead)."""
    N, L = series.shape
    if window < 1 or ahead < 1:
        raise CharrnnError(f"window and steps ahead must be >= 1, got {window} and {ahead}")
    if window + ahead > L:
        raise CharrnnError(f"a window of {window} plus {ahead} step(s) ahead needs series of {window + ahead} "
                           f"values; these have {L}")  # fmt: skip
    X = series[:, :window, None]
    if every_step:
        y = np.stack([series[:, k + 1 : k + 1 + window] for k in range(ahead)], axis=-1)
    else:
        y = series[:, window : window + ahead]
    return X, y


# ---- writing ----


def write_npz(path: str | Path, data: SeriesData) -> None:
    """The splits and a JSON `meta` as one .npz, atomically."""
    meta = json.dumps({"format": DATA_FORMAT, "version": 1, "source": data.source})
    with atomic_writer(path) as handle:
        np.savez(handle, train=data.train, valid=data.valid, test=data.test, meta=np.array(meta))


def write_csv(path: str | Path, rows: np.ndarray, header: list[str] | None = None) -> None:
    """One row per line, values with 9 significant digits (float32 round-trips), atomically."""
    lines = [",".join(header)] if header else []
    lines += [",".join(f"{v:.9g}" for v in row) for row in rows]
    with atomic_writer(path) as handle:
        handle.write(("\n".join(lines) + "\n").encode())
