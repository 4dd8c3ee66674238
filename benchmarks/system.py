"""Machine description, start-up times and peak memory: everything measured on whole `python` processes.

Start-up: wall time of `python -c "import charrnn"` (and of `import charrnn.model`, which brings in numba
and the kernels module), and of `python -m charrnn sample MODEL -n 100` twice with NUMBA_CACHE_DIR
pointing at a fresh empty directory: the first run compiles the kernels (cold), the second loads them from
that cache (warm; the warm figure is the median of `repeats` runs).

Memory: peak resident set size (ru_maxrss of exactly that child, via os.wait4) of
`python -m charrnn train CORPUS -o ... --steps 50 --hidden 256 -q` on a synthetic corpus written to a
temporary directory: tiny Shakespeare repeated, ~1% of each copy's characters replaced by others of its
alphabet (so no two copies are equal; the vocabulary stays 65 characters), or random text when tiny
Shakespeare is not at hand.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAKESPEARE = Path("/work/shared/corpora/tinyshakespeare.txt")  # used when present; random text otherwise


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_info(checkout: Path) -> dict:
    """CPU model, core counts, date, OS, Python and library versions, the benchmarked checkout's commit,
    load average at the start."""
    cpu = "unknown"
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = match.group(1).strip() if match else platform.processor() or "unknown"
    except OSError:
        cpu = platform.processor() or "unknown"
    versions = {}
    for package in ("numpy", "numba", "llvmlite", "scipy", "threadpoolctl", "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_model": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "charrnn_tree": str(checkout),
        "charrnn_commit": _describe(checkout),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _describe(checkout: Path) -> str | None:
    """`git describe --always --dirty` of the checkout (None outside git)."""
    try:
        done = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def run_timed(command: list[str], env: dict, cwd: str | Path) -> tuple[float, int, int]:
    """Run a command to completion in `cwd`: (wall seconds, exit status, peak RSS in bytes of that process).

    `cwd` must not be a checkout: `python -c`/`-m` put the working directory first on sys.path, where it
    would shadow the charrnn that PYTHONPATH selects.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, unlike RUSAGE_CHILDREN
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        log(f"  command failed ({process.returncode}): {' '.join(command)}\n{stderr.decode(errors='replace')[-2000:]}")
    return wall, process.returncode, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def write_model(path: Path, hidden: int = 256) -> None:
    """A randomly initialised checkpoint (V = 65) for `charrnn sample` to load."""
    from workers import bench_vocab

    from charrnn.model import Model, ModelConfig, save_checkpoint

    model = Model.initialize(ModelConfig(vocab_size=65, hidden_size=hidden), bench_vocab(65), np.random.default_rng(0))
    save_checkpoint(path, model, {"role": "best", "step": 0}, {})


def startup(env: dict, repeats: int, has_sampler: bool) -> dict:
    """Import and `charrnn sample -n 100` wall times (see the module docstring)."""
    python = sys.executable
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-startup-") as tmp:
        for name, code in (
            ("python_bare_s", "pass"),
            ("import_charrnn_s", "import charrnn"),
            ("import_charrnn_model_s", "import charrnn.model"),
        ):
            log(f"  start-up: python -c {code!r} x{repeats}")
            result[name] = statistics.median(run_timed([python, "-c", code], env, tmp)[0] for _ in range(repeats))
        result["importtime_cumulative_s"] = importtime(env, tmp)
        if not has_sampler:
            result["sample_skipped"] = "charrnn.generate not available: no `charrnn sample` command on this tree"
            return result
        model = Path(tmp) / "model.npz"
        write_model(model)
        cache = Path(tmp) / "numba-cache"
        cache.mkdir()
        sample_env = {**env, "NUMBA_CACHE_DIR": str(cache)}
        command = [python, "-m", "charrnn", "sample", str(model), "-n", "100", "--seed", "0"]
        log("  start-up: first `charrnn sample -n 100` (empty numba cache: compiles)")
        cold, status, _ = run_timed(command, sample_env, tmp)
        result["sample_cold_s"] = cold if status == 0 else None
        log(f"  start-up: `charrnn sample -n 100` with the cache warm x{repeats}")
        warm = [run_timed(command, sample_env, tmp) for _ in range(repeats)]
        ok = status == 0 and all(code == 0 for _, code, _ in warm)
        result["sample_warm_s"] = statistics.median(wall for wall, _, _ in warm) if ok else None
        result["sample_warm_runs_s"] = [wall for wall, _, _ in warm]
    return result


def importtime(env: dict, cwd: str) -> dict[str, float]:
    """Cumulative import seconds of the heavy modules under `python -X importtime -c "import charrnn.model"`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import charrnn.model"], env=env, cwd=cwd,
                          capture_output=True, text=True)  # fmt: skip
    cumulative = {}
    for line in done.stderr.splitlines():  # "import time: self [us] | cumulative | imported package"
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] in ("numpy", "scipy", "numba", "charrnn", "charrnn.kernels", "charrnn.model"):
            cumulative[parts[2]] = int(parts[1]) / 1e6
    return cumulative


def make_corpus(path: Path, size: int, seed: int = 0) -> None:
    """Write a synthetic corpus of `size` bytes (module docstring), one block at a time."""
    rng = np.random.default_rng(seed)
    if SHAKESPEARE.is_file():
        base = np.frombuffer(SHAKESPEARE.read_bytes(), dtype=np.uint8)
    else:  # random "words" over 64 printable characters and newlines
        base = rng.integers(32, 96, size=1 << 20).astype(np.uint8)
        base[rng.random(base.size) < 0.02] = ord("\n")
    alphabet = np.unique(base)
    written = 0
    with open(path, "wb") as handle:
        while written < size:
            block = base[: size - written].copy()
            where = rng.random(block.size) < 0.01
            block[where] = alphabet[rng.integers(0, alphabet.size, size=int(where.sum()))]
            handle.write(block.tobytes())
            written += block.size


def memory(env: dict, corpus_bytes: int, steps: int, hidden: int = 256) -> dict:
    """Peak RSS of `charrnn train` on a synthetic corpus of `corpus_bytes` bytes (module docstring).

    NUMBA_CACHE_DIR points at a fresh directory, filled first by the same command on a 1 MB corpus (whose
    peak RSS, compiler included, is reported as the cold run); the measured run then loads the compiled
    kernels, as every run after a user's first does.
    """
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-memory-") as tmp:
        env = {**env, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba-cache")}
        options = ["-o", str(Path(tmp) / "model.npz"), "--force", "--steps", str(steps), "--hidden", str(hidden),
                   "-q"]  # fmt: skip
        small, corpus = Path(tmp) / "small.txt", Path(tmp) / "corpus.txt"
        make_corpus(small, 1_000_000)
        log(f"  memory: charrnn train {' '.join(options[2:])} on 1 MB (compiles into a fresh numba cache)")
        cold_wall, cold_status, cold_rss = run_timed([sys.executable, "-m", "charrnn", "train", str(small), *options],
                                                     env, tmp)  # fmt: skip
        log(f"  memory: writing a {corpus_bytes / 1e6:.0f} MB synthetic corpus to {tmp}")
        make_corpus(corpus, corpus_bytes)
        log(f"  memory: charrnn train {' '.join(options[2:])} on it")
        wall, status, rss = run_timed([sys.executable, "-m", "charrnn", "train", str(corpus), *options], env, tmp)
        _, _, bare = run_timed([sys.executable, "-c", "import charrnn.train"], env, tmp)
    return {
        "command": "charrnn train CORPUS -o MODEL " + " ".join(options[2:]),
        "corpus_bytes": corpus_bytes,
        "peak_rss_bytes": rss if status == 0 else None,
        "overhead_bytes": rss - corpus_bytes if status == 0 else None,
        "wall_s": wall,
        "exit_status": status,
        "peak_rss_import_only_bytes": bare,
        "cold_cache_1mb_peak_rss_bytes": cold_rss if cold_status == 0 else None,
        "cold_cache_1mb_wall_s": cold_wall,
    }
