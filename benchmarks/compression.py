"""charrnn as a compressor (issue 15) beside gzip -9, bzip2 -9, xz -9e and zstd -19 --long.

For each shared corpus, the last 10% of its bytes (cut after a newline) is the text to compress, and a model
trained on the first 90% compresses it: 1 layer of 256, `charrnn train` for --minutes on one thread with the
settings in `train_command`, holding out the last 5% of those 90% for its own validation and keeping the best
checkpoint. Prints a markdown table (bits per byte of the original file; compressing and decompressing speed
in KB/s = 1000 bytes of the original a second of CPU time, medians of --repeats) and writes every number to
JSON with the machine's load before and after: the speeds mean little on a busy machine.

    python benchmarks/compression.py                       # trains the models once (cached), then measures
    python benchmarks/compression.py --train-only          # just the models
    python benchmarks/compression.py --out benchmarks/COMPRESSION.json > benchmarks/COMPRESSION.md

Every file, charrnn's and the other compressors', is decompressed again and compared byte for byte with the
original (a round trip that fails stops the script).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
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
    """`charrnn train` for a short budget on a busy machine: B = 32 and lr 4e-3 learn more per character
    early on (README, Quality), no dropout (ten-odd epochs of one layer barely overfit)."""
    return [sys.executable, "-m", "charrnn", "train", str(head), "-o", str(model), "--hidden", "256", "--layers", "1",
            "--batch-size", "32", "--lr", "4e-3", "--dropout", "0", "--val-frac", "0.05", "--time", str(minutes * 60),
            "--threads", "1", "--sample-every", "0", "-q"]  # fmt: skip


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


COMPRESSORS = {  # name -> (compress, decompress) commands, reading stdin and writing stdout
    "gzip -9": (["gzip", "-9", "-c"], ["gzip", "-d", "-c"]),
    "bzip2 -9": (["bzip2", "-9", "-c"], ["bzip2", "-d", "-c"]),
    "xz -9e": (["xz", "-9e", "-c"], ["xz", "-d", "-c"]),
    "zstd -19 --long": (["zstd", "-19", "--long", "-c", "-q"], ["zstd", "-d", "--long", "-c", "-q"]),
}


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def external(name: str, data: bytes, repeats: int) -> dict:
    """Size and CPU speed of a command-line compressor (median of `repeats`), its round trip checked."""
    pack, unpack = COMPRESSORS[name]
    if shutil.which(pack[0]) is None:
        return {"missing": True}
    times, back_times = [], []
    for _ in range(repeats):
        start = child_cpu()
        packed = subprocess.run(pack, input=data, capture_output=True, check=True).stdout
        times.append(child_cpu() - start)
        start = child_cpu()
        back = subprocess.run(unpack, input=packed, capture_output=True, check=True).stdout
        back_times.append(child_cpu() - start)
        if back != data:
            raise SystemExit(f"{name} did not round-trip")
    return summary(len(data), len(packed), statistics.median(times), statistics.median(back_times))


def summary(original: int, compressed: int, seconds: float, back_seconds: float) -> dict:
    return {"bytes": compressed, "bits_per_byte": 8 * compressed / original,
            "compress_kb_s": original / 1000 / seconds if seconds else None,
            "decompress_kb_s": original / 1000 / back_seconds if back_seconds else None}  # fmt: skip


def charrnn(model_path: Path, data: bytes, adapt, repeats: int) -> dict:
    """charrnn's size and speed (the coding thread's CPU time, median of `repeats`, in a warm process: model
    loading and the JIT cache excluded), every round trip checked byte for byte."""
    from charrnn.codec import compress, decompress
    from charrnn.model import load_model

    model = load_model(model_path)
    compress(model, data[:1000], adapt=adapt)  # load the compiled code
    times, back_times = [], []
    for _ in range(repeats):
        blob, stats = compress(model, data, adapt=adapt)
        back, back_stats = decompress(model, blob)
        if back != data:
            raise SystemExit(f"charrnn did not round-trip {model_path}")
        times.append(stats.seconds)
        back_times.append(back_stats.seconds)
    out = summary(len(data), len(blob), statistics.median(times), statistics.median(back_times))
    out["header_bytes"] = stats.header_bytes
    out["escaped_characters"] = stats.escaped
    return out


def surprisal(model_path: Path, data: bytes) -> dict:
    """What `charrnn score` says of the same text (characters 2..N, CRLF read as LF), in bits per byte of
    the file: the size the coder should reach, less the header and the first character."""
    from charrnn.model import load_model
    from charrnn.score import score_text

    model = load_model(model_path)
    result = score_text(model, data.decode("utf-8").replace("\r\n", "\n"), unk="skip")
    bits = -result.log_likelihood / math.log(2)
    return {"bits_per_byte": bits / len(data), "bits_per_char": result.bits_per_char,
            "characters_scored": result.scored, "unknown_skipped": result.unknown.total}  # fmt: skip


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per model")
    parser.add_argument("--train-only", action="store_true", help="train the models and stop")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (the median counts)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--render", type=Path, default=None, help="only print the table of this JSON")
    args = parser.parse_args()
    if args.render:
        print(markdown(json.loads(args.render.read_text())))
        return
    models = {name: train(CORPORA / name, args.minutes) for name in TEXTS}
    if args.train_only:
        print(json.dumps({name: str(path) for name, path in models.items()}))
        return
    from charrnn.codec import DEFAULT_ADAPTATION, Adaptation

    sys.path.insert(0, str(HERE))
    from system import machine_info

    adapt = Adaptation(*DEFAULT_ADAPTATION)
    results = {"machine": machine_info(ROOT), "uptime_start": uptime(), "texts": {}}
    for name, model in models.items():
        _, tail = split(CORPORA / name)
        data = tail.read_bytes()
        print(f"{name}: {len(data):,} bytes ...", file=sys.stderr, flush=True)
        meta = json.loads(subprocess.run([sys.executable, "-m", "charrnn", "info", str(model), "--json"],
                                         capture_output=True, text=True, check=True, cwd=ROOT).stdout)  # fmt: skip
        row = {"bytes": len(data), "model": {"path": str(model.relative_to(ROOT)), "steps": meta["steps"],
               "best_val_bits_per_char": meta["best_val_loss_bits"], "config": meta["config"],
               "train_command": " ".join(train_command(Path("TRAIN"), Path("MODEL"), args.minutes)[2:])}}  # fmt: skip
        row["score"] = surprisal(model, data)
        row["charrnn"] = charrnn(model, data, None, args.repeats)
        row[f"charrnn --adapt (lr {adapt.lr:g}, window {adapt.window})"] = charrnn(model, data, adapt, args.repeats)
        for compressor in COMPRESSORS:
            row[compressor] = external(compressor, data, args.repeats)
        results["texts"][name] = row
    results["uptime_end"] = uptime()
    print(markdown(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


def markdown(results: dict) -> str:
    names = list(results["texts"])
    methods = [key for key in results["texts"][names[0]] if key not in ("bytes", "model", "score")]
    head = " | ".join(f"{n} (last 10%, {results['texts'][n]['bytes']:,} B)" for n in names)
    lines = [f"bits per byte, then compressing / decompressing KB/s (CPU time)\n\n| compressor | {head} |",
             "|---|" + "---:|" * len(names)]  # fmt: skip
    for method in methods:
        cells = []
        for name in names:
            r = results["texts"][name][method]
            speeds = "missing" if r.get("missing") else f"{r['compress_kb_s']:,.0f} / {r['decompress_kb_s']:,.0f}"
            cells.append("missing" if r.get("missing") else f"**{r['bits_per_byte']:.3f}** · {speeds}")
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    cells = [f"{results['texts'][n]['score']['bits_per_byte']:.3f}" for n in names]
    lines.append("| *the model's surprisal (`charrnn score`, no header)* | " + " | ".join(cells) + " |")
    lines.append("")
    for name in names:
        model = results["texts"][name]["model"]
        lines.append(f"- {name}: model `{model['path']}`, {model['steps']:,} steps, best validation "
                     f"{model['best_val_bits_per_char']:.3f} bits/char; `{model['train_command']}`")  # fmt: skip
    lines.append(f"- load at start: {results['uptime_start']}; at end: {results['uptime_end']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
