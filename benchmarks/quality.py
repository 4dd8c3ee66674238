"""Model quality on tiny Shakespeare after fixed wall-clock budgets, beside n-gram baselines.

    python benchmarks/quality.py ../shared/corpora/tinyshakespeare.txt [--hidden 128,256,512]
        [--minutes 5,20] [--out benchmarks/results/quality.json] [-- extra charrnn train options]

The split is nanoGPT's (`data/shakespeare_char/prepare.py`): the first int(0.9·n) characters train, the
rest validate. Each (hidden size, budget) pair is one `charrnn train --time` run with every other option
at its default; the figure is the best validation loss of the run (the model kept in <stem>.best.npz).
Results are appended to the JSON file as each run finishes, so a long sweep can be stopped and resumed
(pairs already in the file are skipped). Runs are sequential: each uses the whole machine.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from charrnn.baselines import baseline_table
from charrnn.metrics import read_metrics
from charrnn.vocab import Vocab

NANOGPT_VAL = 1.47  # nanoGPT's shakespeare_char transformer (GPU), validation nats/char, from its README


def split_nanogpt(corpus: Path, directory: Path) -> tuple[Path, Path, str, str]:
    text = corpus.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    train_path, val_path = directory / "train.txt", directory / "val.txt"
    train_path.write_text(text[:cut], encoding="utf-8")
    val_path.write_text(text[cut:], encoding="utf-8")
    return train_path, val_path, text[:cut], text[cut:]


def baselines(train_text: str, val_text: str) -> dict[int, float]:
    vocab = Vocab.from_text(train_text + val_text)
    return baseline_table(vocab.encode(train_text), vocab.encode(val_text), len(vocab), orders=(1, 2, 3, 4, 5))


def run(train_path: Path, val_path: Path, hidden: int, minutes: float, workdir: Path, extra: list[str]) -> dict:
    output = workdir / f"h{hidden}-{minutes:g}min.npz"
    command = [sys.executable, "-m", "charrnn", "train", str(train_path), "--val-file", str(val_path),
               "--hidden", str(hidden), "--time", str(minutes * 60), "-o", str(output), "--force", "-q",
               *extra]  # fmt: skip
    print(f"[quality] {' '.join(command[2:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - started
    info = json.loads(subprocess.run([sys.executable, "-m", "charrnn", "info", str(output), "--json"],
                                     check=True, capture_output=True, text=True).stdout)  # fmt: skip
    metrics_path = output.with_name(f"{output.stem}.metrics.jsonl")
    records = read_metrics(metrics_path)
    last = records[-1] if records else {}
    best = min((r for r in records if r.get("val_nats_per_char") is not None), key=lambda r: r["val_nats_per_char"],
               default={})  # fmt: skip
    return {
        "hidden": hidden,
        "layers": info["config"]["num_layers"],
        "minutes": minutes,
        "best_at_seconds": best.get("elapsed_seconds"),
        "best_val_nats": info["best_val_nats_per_char"],
        "best_val_bits": info["best_val_bits_per_char"],
        "steps": info["steps"],
        "final_train_nats": last.get("train_nats_per_char"),
        "chars_per_second": last.get("chars_per_second"),
        "wall_seconds": round(wall, 1),
        "options": extra,
    }


def table(results: list[dict], base: dict[int, float]) -> str:
    lines = [
        "| model | budget | validation nats/char | bits/char | steps | train nats/char (dropout on) |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: (r["hidden"], r["minutes"])):
        train = f"{r['final_train_nats']:.3f}" if r.get("final_train_nats") is not None else "—"
        options = " ".join(r["options"])
        name = f"charrnn {r.get('layers', 1)} × {r['hidden']}" + (f" `{options}`" if options else "")
        lines.append(f"| {name} | {r['minutes']:g} min | **{r['best_val_nats']:.3f}** | "
                     f"{r['best_val_bits']:.3f} | {r['steps']:,} | {train} |")  # fmt: skip
    names = {1: "unigram", 2: "bigram", 3: "trigram", 4: "4-gram", 5: "5-gram"}
    for order, loss in base.items():
        lines.append(f"| {names[order]} (Kneser–Ney) | — | {loss:.3f} | {loss / math.log(2):.3f} | — | — |")
    lines.append(f"| nanoGPT transformer (GPU) | — | {NANOGPT_VAL:.2f} | {NANOGPT_VAL / math.log(2):.2f} | — | — |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--hidden", default="128,256,512")
    parser.add_argument("--minutes", default="5,20")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quality.json"))
    parser.add_argument("extra", nargs="*", help="extra `charrnn train` options (after --)")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        train_path, val_path, train_text, val_text = split_nanogpt(args.corpus, workdir)
        saved["baselines"] = {str(k): v for k, v in baselines(train_text, val_text).items()}
        saved["split"] = {"train_chars": len(train_text), "val_chars": len(val_text)}
        for minutes in [float(m) for m in args.minutes.split(",")]:
            for hidden in [int(h) for h in args.hidden.split(",")]:
                if any(r["hidden"] == hidden and r["minutes"] == minutes and r["options"] == args.extra
                       for r in saved["runs"]):  # fmt: skip
                    continue
                saved["runs"].append(run(train_path, val_path, hidden, minutes, workdir, args.extra))
                args.out.write_text(json.dumps(saved, indent=2))
                print(table(saved["runs"], {int(k): v for k, v in saved["baselines"].items()}), flush=True)
    base = {int(k): v for k, v in saved["baselines"].items()}
    print(table([r for r in saved["runs"] if r["options"] == args.extra], base))


if __name__ == "__main__":
    main()
