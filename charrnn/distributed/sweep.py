"""Hyper-parameter sweeps: a grid or a random search over `charrnn train` options, one training process a trial.

The sweep file (TOML; paths relative to it):

    corpus = ["corpus.txt"]      # files or directories to train on
    output = "sweep"             # directory of the trials and results [default: <file stem>-sweep beside it]
    keep = "all"                 # or "best": remove the other trials' checkpoints once the sweep is done

    [train]                      # options every trial gets: `charrnn train`'s, without dashes
    steps = 300
    hidden = 64

    [grid]                       # every combination of these lists (file order, the last varying fastest)
    lr = [0.001, 0.003]
    dropout = [0.0, 0.25]

    # or, instead of [grid], a random search (`trials` draws, reproducible from `seed`):
    # search = { trials = 8, seed = 0 }
    # [random]
    # lr = { log_uniform = [1e-4, 1e-2] }
    # dropout = { uniform = [0.0, 0.5] }
    # hidden = [64, 128, 256]    # a list: one of its values, uniformly
    # layers = { int = [1, 3] }  # an integer in [1, 3]

Each trial is `python -m charrnn train CORPUS -o <output>/<trial>/model.npz --quiet <options>` in a process of
its own (with --sample-every 0 unless the file sets it): a trial that diverges, runs out of memory or crashes
takes nothing else down, its log (stdout and stderr) is kept in <trial>/train.log, and its figures come from
the checkpoints it wrote. On a Dask engine the
trials run one per worker, each with --threads 1 (unless the file sets threads); the corpus and the output
directory must then be on a file system every worker sees.

Results: one JSON line per trial in <output>/trials.jsonl as trials finish (in trial order; `--resume-output`
skips the trials already there), then <output>/sweep.json with every trial and the best, a copy of the best
trial's best checkpoint as <output>/best.npz. A trial that diverges is reported ("diverged") with whatever its
last good checkpoint reached; it does not stop the sweep.
"""

from __future__ import annotations

import itertools
import math
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CharrnnError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

TOP_KEYS = {"corpus", "output", "keep", "search", "train", "grid", "random"}
RESERVED = {"output": "-o is the trial's own", "resume": "each trial starts afresh", "quiet": "always on",
            "init_from": None, "help": None}  # fmt: skip
DISTRIBUTIONS = ("uniform", "log_uniform", "int")
LN2 = math.log(2.0)


@dataclass(frozen=True)
class Trial:
    """One training run: its id, the full option set (fixed and searched), and where it writes."""

    id: str
    params: dict  # the searched options only
    options: dict  # fixed + searched, as passed to `charrnn train`
    corpus: tuple[str, ...]
    directory: str
    threads_default: int | None = None  # --threads when the options do not set it (1 on Dask workers)

    @property
    def model(self) -> Path:
        return Path(self.directory) / "model.npz"


@dataclass(frozen=True)
class SweepConfig:
    source: Path
    corpus: tuple[str, ...]
    output: Path
    keep: str
    fixed: dict
    search: str  # "grid" | "random"
    trials: list[Trial] = field(default_factory=list)


def load_sweep(path: str | Path, allowed: dict[str, tuple[str, bool]] | None = None,
               output: str | Path | None = None) -> SweepConfig:  # fmt: skip
    """Parse and check a sweep file. `allowed` maps option names (dashes as underscores) to (the option as
    written on the command line, whether it is a flag); None skips the check."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CharrnnError(f"cannot read sweep file {path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CharrnnError(f"{path}: not valid TOML: {error}") from None
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise CharrnnError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(TOP_KEYS))}")
    base = path.resolve().parent
    corpus = raw.get("corpus")
    if isinstance(corpus, str):
        corpus = [corpus]
    if not corpus or not isinstance(corpus, list) or not all(isinstance(c, str) for c in corpus):
        raise CharrnnError(f"{path}: corpus must be a path or a list of paths (relative to the file)")
    corpus = tuple(str((base / c).resolve()) for c in corpus)
    for c in corpus:
        if not Path(c).exists():
            raise CharrnnError(f"{path}: corpus {c} does not exist")
    out = Path(output) if output is not None else base / raw.get("output", f"{path.stem}-sweep")
    keep = raw.get("keep", "all")
    if keep not in ("all", "best"):
        raise CharrnnError(f'{path}: keep must be "all" or "best", got {keep!r}')
    fixed = _options(path, "train", raw.get("train", {}), allowed)
    grid, random = raw.get("grid"), raw.get("random")
    if (grid is None) == (random is None):
        raise CharrnnError(f"{path}: give exactly one of [grid] or [random]")
    if grid is not None:
        combos = _grid(path, _options(path, "grid", grid, allowed))
        search = "grid"
    else:
        combos = _random(path, _options(path, "random", random, allowed), raw.get("search", {}))
        search = "random"
    clash = sorted(set(fixed) & set(combos[0]))
    if clash:
        raise CharrnnError(f"{path}: {', '.join(clash)} both fixed in [train] and searched")
    names = [f"trial-{i:0{len(str(len(combos) - 1))}d}" for i in range(len(combos))]
    trials = [Trial(name, params, {**fixed, **params}, corpus, str(out.resolve() / name))
              for name, params in zip(names, combos, strict=True)]  # fmt: skip
    return SweepConfig(path, corpus, out.resolve(), keep, fixed, search, trials)


def _options(path: Path, table: str, values: Any, allowed: dict | None) -> dict:
    if not isinstance(values, dict):
        raise CharrnnError(f"{path}: [{table}] must be a table of options")
    out = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name in RESERVED:
            raise CharrnnError(f"{path}: [{table}] {key}: set by the sweep ({RESERVED[name] or 'not supported'})")
        if allowed is not None and name not in allowed:
            raise CharrnnError(f"{path}: [{table}] {key} is not an option of `charrnn train`")
        out[name] = value
    return out


def _grid(path: Path, grid: dict) -> list[dict]:
    if not grid:
        raise CharrnnError(f"{path}: [grid] is empty")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise CharrnnError(f"{path}: [grid] {key} must be a non-empty list of values")
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _random(path: Path, space: dict, search: Any) -> list[dict]:
    if not isinstance(search, dict) or set(search) - {"trials", "seed"}:
        raise CharrnnError(f"{path}: search must be {{ trials = N, seed = S }}")
    trials, seed = search.get("trials"), search.get("seed", 0)
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1 or not isinstance(seed, int):
        raise CharrnnError(f"{path}: a random search needs search = {{ trials = N (>= 1), seed = S (integer) }}")
    if not space:
        raise CharrnnError(f"{path}: [random] is empty")
    for key, spec in space.items():
        _check_distribution(path, key, spec)
    rng = np.random.default_rng(seed)
    return [{key: _draw(rng, spec) for key, spec in space.items()} for _ in range(trials)]


def _check_distribution(path: Path, key: str, spec: Any) -> None:
    if isinstance(spec, list) and spec:
        return
    ok = isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in DISTRIBUTIONS
    bounds = next(iter(spec.values())) if ok else None
    ok = ok and isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, int | float) for b in bounds)
    if ok:
        (kind,) = spec
        low, high = bounds
        ok = low <= high and (kind != "log_uniform" or low > 0) and (kind != "int" or all(isinstance(b, int)
                                                                                          for b in bounds))  # fmt: skip
    if not ok:
        raise CharrnnError(f"{path}: [random] {key} must be a list of values or one of {{ uniform = [a, b] }}, "
                           "{ log_uniform = [a > 0, b] }, { int = [a, b] } with a <= b")  # fmt: skip


def _draw(rng: np.random.Generator, spec: Any) -> Any:
    if isinstance(spec, list):
        return spec[int(rng.integers(len(spec)))]
    ((kind, (low, high)),) = spec.items()
    if kind == "int":
        return int(rng.integers(low, high + 1))
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return float(rng.uniform(low, high))


def train_argv(trial: Trial, allowed: dict[str, tuple[str, bool]] | None = None) -> list[str]:
    """The trial's `charrnn train` command line."""
    options = dict(trial.options)
    if "threads" not in options and trial.threads_default is not None:
        options["threads"] = trial.threads_default
    options.setdefault("sample_every", 0)  # samples in a trial's log cost time and decide nothing
    argv = [sys.executable, "-m", "charrnn", "train", *trial.corpus, "-o", str(trial.model), "--quiet"]
    for name, value in options.items():
        flag, is_flag = (allowed or {}).get(name, ("--" + name.replace("_", "-"), isinstance(value, bool)))
        if is_flag:
            if value is True:
                argv.append(flag)
            continue
        argv += [flag, str(value)]
    return argv


def run_trial(trial: Trial, allowed: dict | None = None) -> dict:
    """Train one trial in a process of its own and read its figures back (the task of a sweep)."""
    from ..checkpointing import best_path
    from ..report import info_record

    directory = Path(trial.directory)
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "train.log"
    start = time.perf_counter()
    argv = train_argv(trial, allowed)
    with open(log, "w", encoding="utf-8") as handle:
        code = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=_same_charrnn_env()).returncode  # fmt: skip
    seconds = time.perf_counter() - start
    errors = [line[len("Error: "):] for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
              if line.startswith("Error: ")]  # fmt: skip
    status = "ok" if code == 0 else "diverged" if errors and "diverged" in errors[-1] else \
        "interrupted" if code == 130 else "failed"  # fmt: skip
    row = {"id": trial.id, "params": trial.params, "status": status, "best_val_loss_nats": None,
           "best_val_bits_per_char": None, "steps": None, "seconds": seconds, "model": None, "log": str(log),
           "error": (errors[-1] if errors else f"exit status {code}") if code else None,
           "command": shlex.join(["charrnn", *argv[3:]])}  # fmt: skip
    best = best_path(trial.model)
    for checkpoint in (trial.model, best):
        if checkpoint.exists():
            try:
                info = info_record(checkpoint)
            except CharrnnError:
                continue
            row["steps"] = row["steps"] or info["steps"]
            if checkpoint == best and info["best_val_nats_per_char"] is not None:
                row["best_val_loss_nats"] = info["best_val_nats_per_char"]
                row["best_val_bits_per_char"] = info["best_val_bits_per_char"]
                row["model"] = str(best)
    return row


def _same_charrnn_env() -> dict[str, str]:
    """The environment with this charrnn first on the path: the trial trains with the code that runs the sweep,
    whatever the worker's current directory holds."""
    import os

    import charrnn

    env = dict(os.environ)
    root = str(Path(charrnn.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def choose_best(rows: list[dict]) -> dict | None:
    """The finished trial with the lowest best validation loss (ties: the earlier trial)."""
    finished = [r for r in rows if r["status"] == "ok" and r["best_val_loss_nats"] is not None]
    return min(finished, key=lambda r: r["best_val_loss_nats"]) if finished else None


def finish(config: SweepConfig, rows: list[dict]) -> dict:
    """Write sweep.json, copy the best model to best.npz, apply `keep`. Returns the summary."""
    import json

    from ..atomic import write_bytes_atomic

    best = choose_best(rows)
    if best is not None:
        write_bytes_atomic(config.output / "best.npz", Path(best["model"]).read_bytes())
        if config.keep == "best":
            for row in rows:
                if row["id"] != best["id"]:
                    for checkpoint in Path(row["log"]).parent.glob("*.npz"):
                        checkpoint.unlink()
    summary = {"sweep": str(config.source), "corpus": list(config.corpus), "search": config.search,
               "train": config.fixed, "best": None if best is None else best["id"],
               "best_model": None if best is None else str(config.output / "best.npz"), "trials": rows}  # fmt: skip
    write_bytes_atomic(config.output / "sweep.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def run_sweep(config: SweepConfig, engine, allowed: dict | None = None, resume: bool = False,
              progress: bool = True) -> dict:  # fmt: skip
    """Run every trial of `config` on `engine` (entered); trials.jsonl streamed, sweep.json at the end."""
    import dataclasses
    import json
    from functools import partial

    from tqdm import tqdm

    from .output import OrderedWriter

    config.output.mkdir(parents=True, exist_ok=True)
    threads = 1 if engine.name == "dask" else None
    trials = [dataclasses.replace(t, threads_default=threads) for t in config.trials]
    record = {"kind": "sweep", "corpus": list(config.corpus), "train": config.fixed,
              "trials": {t.id: t.params for t in trials}}  # fmt: skip
    results = config.output / "trials.jsonl"
    writer = OrderedWriter(results, resume, json.loads(json.dumps(record)))
    todo = [t for t in trials if t.id not in writer.done]
    try:
        with tqdm(total=len(trials), initial=len(trials) - len(todo), unit="trial", disable=not progress,
                  leave=False) as bar:  # fmt: skip
            for seq, row in engine.map(partial(run_trial, allowed=allowed), todo):
                writer.add(seq, [row])
                bar.update(1)
    finally:
        writer.close()
    with open(results, encoding="utf-8") as handle:
        rows = {row["id"]: row for row in map(json.loads, filter(str.strip, handle))}
    return finish(config, [rows[t.id] for t in trials if t.id in rows])
