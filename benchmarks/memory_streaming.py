"""`charrnn score` and `charrnn sample` in memory that does not grow with the text: peak RSS, small vs large.

Each command runs in its own child process, once on a small input (--small-mb, default 1 MiB of text;
for `sample`, as many characters) and once on a large one (--large-mb, default 200), and the peak RSS of
each child (os.wait4's ru_maxrss) is compared. Streaming holds: the large run's peak is within
--budget-mb (default 100) of the small one's. The model is small (1 x --hidden, random weights) so the
200 MB run takes minutes, not hours; its size does not change what grows with the text.

    python benchmarks/memory_streaming.py --workdir /tmp/memory-streaming

Prints a table and one JSON line (also written to --out when given).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ALPHABET = "abcdefgh ijklmnop\n"


def make_text(path: Path, size_mb: float, seed: int = 0) -> int:
    """`size_mb` MiB of random text over ALPHABET (ASCII: one byte per character), written in blocks."""
    rng = np.random.default_rng(seed)
    table = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    target, written = int(size_mb * (1 << 20)), 0
    with open(path, "wb") as handle:
        while written < target:
            block = table[rng.integers(0, len(table), size=min(1 << 22, target - written))]
            handle.write(block.tobytes())
            written += block.size
    return written


def make_model(path: Path, hidden: int) -> None:
    from charrnn.model import Model, ModelConfig, save_checkpoint
    from charrnn.vocab import Vocab

    vocab = Vocab(sorted(ALPHABET))
    model = Model.initialize(ModelConfig(len(vocab), hidden, 1, "tanh", "float32"), vocab, np.random.default_rng(0))
    save_checkpoint(path, model, {}, {})


def peak_rss(args: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one child process, its output thrown away."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        child = subprocess.Popen(args, stdout=sink, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        stderr = child.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(args)}\n{stderr[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/charrnn-memory-streaming"))
    parser.add_argument("--small-mb", type=float, default=1.0)
    parser.add_argument("--large-mb", type=float, default=200.0)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--budget-mb", type=float, default=100.0)
    parser.add_argument("--out", type=Path, default=None)
    options = parser.parse_args()
    options.workdir.mkdir(parents=True, exist_ok=True)
    model = options.workdir / "m.npz"
    make_model(model, options.hidden)
    charrnn = [sys.executable, "-m", "charrnn"]
    rows = []
    for size in (options.small_mb, options.large_mb):
        text = options.workdir / f"text-{size:g}mb.txt"
        if not text.exists() or text.stat().st_size != int(size * (1 << 20)):
            make_text(text, size)
        chars = int(size * (1 << 20))
        for name, args in (("score", [*charrnn, "score", str(model), str(text)]),
                           ("score --per-line", [*charrnn, "score", str(model), str(text), "--per-line"]),
                           ("sample", [*charrnn, "sample", str(model), "-n", str(chars), "--seed", "1"])):  # fmt: skip
            print(f"running {name} on {size:g} MiB ...", file=sys.stderr, flush=True)
            seconds, rss = peak_rss(args)
            rows.append({"command": name, "input_mib": size, "characters": chars, "wall_seconds": round(seconds, 1),
                         "peak_rss_bytes": rss})  # fmt: skip
    verdicts = {}
    print("\n| command | input | wall | peak RSS |\n|---|---:|---:|---:|")
    for row in rows:
        print(f"| `{row['command']}` | {row['input_mib']:g} MiB | {row['wall_seconds']:.1f} s | "
              f"{row['peak_rss_bytes'] / 2**20:.1f} MiB |")  # fmt: skip
    for name in dict.fromkeys(row["command"] for row in rows):
        small, large = (row["peak_rss_bytes"] for row in rows if row["command"] == name)
        growth = (large - small) / 2**20
        verdicts[name] = {"growth_mib": round(growth, 1), "within_budget": growth <= options.budget_mb}
        print(f"{name}: peak RSS grows by {growth:.1f} MiB from {options.small_mb:g} to {options.large_mb:g} MiB "
              f"({'within' if growth <= options.budget_mb else 'OVER'} the {options.budget_mb:g} MiB budget)")
    record = {"kind": "memory_streaming", "hidden": options.hidden, "rows": rows, "verdicts": verdicts,
              "load_average": os.getloadavg()[0]}  # fmt: skip
    print(json.dumps(record))
    if options.out is not None:
        options.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
