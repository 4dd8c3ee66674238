"""Training on a corpus far bigger than memory: encoding rate and peak memory.

Generates a synthetic corpus of --size-mb (default 1024) by repeating a seed text with random character
substitutions (so the repetition is not exact), then measures, each in a fresh process:

  1. encoding: `prepare_data` into an empty id cache (both streaming passes): MB/s of corpus bytes;
  2. cache hit: the same call again (one hashing/scanning pass, nothing written);
  3. training: `charrnn train` for --steps steps on the big corpus (cache warm), and the same command on
     a small corpus, so "beyond the model" = peak RSS(big) - peak RSS(small); and, for completeness,
     a cold run that encodes and trains in one process.

Peak RSS comes from getrusage(RUSAGE_CHILDREN) of each child process. Prints a table and one JSON line.

    python benchmarks/bigcorpus.py --seed-text ../shared/corpora/tinyshakespeare.txt --workdir /tmp/bigcorpus
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def make_corpus(seed_text: Path, path: Path, size_mb: int, seed: int = 0) -> int:
    """Copies of `seed_text` with ~0.5% of bytes replaced by other bytes of the text, to `size_mb` MiB."""
    base = np.frombuffer(seed_text.read_bytes(), dtype=np.uint8)
    alphabet = np.unique(base[base < 128])  # ASCII only, so substitutions never break UTF-8
    rng = np.random.default_rng(seed)
    target, written = size_mb << 20, 0
    with open(path, "wb") as handle:
        while written < target:
            copy = base[: target - written].copy()
            where = rng.integers(0, len(copy), size=len(copy) // 200)
            copy[where] = rng.choice(alphabet, size=len(where))
            handle.write(copy.tobytes())
            written += len(copy)
    return written


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes, stderr) of one child process."""
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(args)}\n{done.stderr[-2000:]}")
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far, so children must grow in size order or be
    # measured one per process: each measurement runs through a tiny wrapper that reports its own child.
    return seconds, int(done.stdout.strip().splitlines()[-1]), done.stderr


WRAPPER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024) "
    "if r.returncode == 0 else sys.exit(r.returncode)"
)


def measured(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    return run_child([sys.executable, "-c", WRAPPER, *args], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed-text", type=Path, default=ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "charrnn-bigcorpus")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--val-max-chars", type=int, default=200_000)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0)
    options = parser.parse_args()

    work = options.workdir
    work.mkdir(parents=True, exist_ok=True)
    big, small = work / f"big-{options.size_mb}mb.txt", work / "small.txt"
    if not big.exists() or big.stat().st_size != options.size_mb << 20:
        print(f"generating {big} ...", file=sys.stderr)
        make_corpus(options.seed_text, big, options.size_mb)
    small.write_bytes(options.seed_text.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    cache = work / "cache"
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    mb = big.stat().st_size / 2**20

    prepare = (
        "from charrnn.data import prepare_data; import sys; d = prepare_data([sys.argv[1]], cache_dir=sys.argv[2]); "
        "print(len(d.train_ids), d.reused_cache, file=sys.stderr)"
    )
    encode_s, encode_rss, _ = measured([sys.executable, "-c", prepare, str(big), str(cache)], env)
    hit_s, hit_rss, hit_err = measured([sys.executable, "-c", prepare, str(big), str(cache)], env)
    assert "True" in hit_err, hit_err

    train = [sys.executable, "-m", "charrnn", "train", "--hidden", str(options.hidden), "--batch-size",
             str(options.batch_size), "--seq-len", str(options.seq_len), "--steps", str(options.steps),
             "--eval-every", str(options.steps), "--sample-every", "0", "--threads", str(options.threads), "-q",
             "--force", "--val-max-chars", str(options.val_max_chars),
             "--cache-dir", str(cache)]  # fmt: skip
    small_s, small_rss, _ = measured([*train, str(small), "-o", str(work / "small.npz")], env)
    big_s, big_rss, big_err = measured([*train, str(big), "-o", str(work / "big.npz")], env)
    cold_cache = work / "cache-cold"
    subprocess.run(["rm", "-rf", str(cold_cache)], check=True)
    cold_s, cold_rss, _ = measured([*train[:-1], str(cold_cache), str(big), "-o", str(work / "cold.npz")], env)
    subprocess.run(["rm", "-rf", str(cold_cache)], check=True)

    results = {
        "corpus_mb": round(mb, 1),
        "encode_seconds": round(encode_s, 1),
        "encode_mb_per_s": round(mb / encode_s, 1),
        "encode_peak_rss_mb": round(encode_rss / 2**20),
        "cache_hit_seconds": round(hit_s, 1),
        "cache_hit_mb_per_s": round(mb / hit_s, 1),
        "train_steps": options.steps,
        "train_big_seconds": round(big_s, 1),
        "train_big_peak_rss_mb": round(big_rss / 2**20),
        "train_small_peak_rss_mb": round(small_rss / 2**20),
        "rss_beyond_small_corpus_run_mb": round((big_rss - small_rss) / 2**20),
        "encode_and_train_cold_seconds": round(cold_s, 1),
        "encode_and_train_cold_peak_rss_mb": round(cold_rss / 2**20),
        "model": f"1 x {options.hidden} tanh, batch {options.batch_size} x {options.seq_len}",
    }
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results))
    print(big_err.strip().splitlines()[-1], file=sys.stderr)


if __name__ == "__main__":
    main()
