"""Rescoring OCR-like n-best lists (`charrnn rerank`) and spotting OCR errors (`charrnn spot`), on the
validation tail of a corpus that the model did not see.

    PYTHONPATH=. python benchmarks/rescoring.py --model anna.best.npz [--corpus ../shared/corpora/anna.txt]
        [--out benchmarks/RESCORING.json]
    PYTHONPATH=. python benchmarks/rescoring.py --train-minutes 20 --workdir benchmarks/results [-- train options]

Split: the corpus as charrnn reads it ("\\r\\n" -> "\\n"); its last 10% of characters validate (what
`charrnn train --val-frac 0.1` holds out), the rest train. With --train-minutes the model is trained on
the rest by `charrnn train TRAIN --val-file VAL --time ...`, and the load average and the busiest other
processes are recorded before and after, since the machine may be shared.

N-best lists: every line of the validation tail with at least MIN_CHARS characters gets a list of 10
distinct candidates, the true line and 9 distortions with 1-3 confusions each from benchmarks/ocr_noise.py
(seed 0), shuffled. Reported for charrnn, the Kneser-Ney 5-gram fitted on the same training text (each
candidate scored the same way: "\\n" + candidate + "\\n", the first newline only conditioning, unknown
characters dropped and charged the worst known character's surprisal in that context) and the first
candidate: top-1 accuracy (the true line chosen) and the character error rate of the chosen lines
(edit distance to the truth / characters of the truth). Throughput: `rerank` on all lists at once,
2 threads, median of 3, wall and CPU time, with and without prefix sharing.

Spotting: the validation tail with 1% of its characters' worth of random confusions (seed 1), the first
half to choose the thresholds on (a small grid), the second half to report on. A report is correct when
it is within one character of a confusion; precision = correct reports / reports, recall = confusions
with a report / confusions.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ocr_noise import corrupt, edit_distance, nbest_list  # noqa: E402

from charrnn.baselines import fit_ngram  # noqa: E402
from charrnn.data import read_text  # noqa: E402
from charrnn.kernels import blas  # noqa: E402
from charrnn.linescore import score_lines  # noqa: E402
from charrnn.model import load_checkpoint  # noqa: E402
from charrnn.nbest import NBest  # noqa: E402
from charrnn.rerank import rerank  # noqa: E402
from charrnn.spot import spot  # noqa: E402

MIN_CHARS = 20
LIST_SIZE = 10
GRID = [(s, g) for s in (6.0, 8.0, 10.0) for g in (10.0, 12.0, 14.0)]
THRESHOLDS = ("min_surprisal", "min_gain")
DEFAULTS = (10.0, 12.0)  # charrnn spot's --min-surprisal and --min-gain


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_load() -> dict:
    """Load average and the busiest processes: what else ran."""
    ps = subprocess.run(["ps", "-eo", "pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    return {"load_average": os.getloadavg(), "busiest": [line[:160] for line in ps.splitlines()[1:9]]}


def split(corpus: Path) -> tuple[str, str]:
    text = read_text([corpus])
    n_val = int(round(len(text) * 0.1))
    return text[: len(text) - n_val], text[len(text) - n_val :]


def train(train_text: str, val_text: str, workdir: Path, minutes: float, extra: list[str]) -> tuple[Path, dict]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "anna-train.txt").write_text(train_text, encoding="utf-8")
    (workdir / "anna-val.txt").write_text(val_text, encoding="utf-8")
    output = workdir / "rescoring-model.npz"
    command = [sys.executable, "-m", "charrnn", "train", str(workdir / "anna-train.txt"), "--val-file",
               str(workdir / "anna-val.txt"), "-o", str(output), "--time", str(minutes * 60), "-q", *extra]  # fmt: skip
    before = machine_load()
    log("[rescoring] " + " ".join(command[2:]))
    subprocess.run(command, check=True)
    return output.with_name(output.stem + ".best.npz"), {"command": command[2:], "before": before,
                                                         "after": machine_load()}  # fmt: skip


def make_lists(val_text: str) -> tuple[list[NBest], list[int], list[str], list[list]]:
    rng = np.random.default_rng(0)
    lists, truths, lines, kinds = [], [], [], []
    for number, line in enumerate(val_text.split("\n")):
        if len(line) < MIN_CHARS:
            continue
        try:
            candidates, truth, line_kinds = nbest_list(line, LIST_SIZE, rng)
        except ValueError:
            continue
        lists.append(NBest(len(lists) + 1, number + 1, len(lists) + 1, candidates, None))
        truths.append(truth)
        lines.append(line)
        kinds.append(line_kinds)
    return lists, truths, lines, kinds


def ngram_choices(model, train_text: str, lists: list[NBest]) -> list[int]:
    """The 5-gram's choice in each list, under the line convention of `linescore`."""
    vocab = model.vocab
    ngram = fit_ngram(vocab.encode(train_text), len(vocab), 5)
    choices = []
    for nbest in lists:
        totals = []
        for candidate in nbest.candidates:
            line = "\n" + candidate + "\n"
            ids = vocab.encode(line, unk="skip").astype(np.int64)
            total = float(ngram.log_probs(ids)[1:].sum())
            known = 0
            for char in line:  # an unknown character: the worst known character's surprisal there
                if char in vocab:
                    known += 1
                else:
                    total += math.log(ngram.next_char_probs(ids[:known]).min())
            totals.append(total)
        choices.append(int(np.argmax(totals)))
    return choices


def quality(name: str, choices: list[int], lists, truths, lines) -> dict:
    correct = sum(c == t for c, t in zip(choices, truths, strict=True))
    errors = sum(edit_distance(nbest.candidates[c], line) for nbest, c, line in zip(lists, choices, lines, strict=True))
    return {"system": name, "lists": len(lists), "top1": correct / len(lists),
            "cer": errors / sum(len(line) for line in lines)}  # fmt: skip


def throughput(model, lists: list[NBest], repeats: int = 3) -> dict:
    texts = [c for nbest in lists for c in nbest.candidates]
    out = {"candidates": len(texts), "median_chars": float(np.median([len(t) for t in texts]))}
    with blas.thread_limit(2):
        rerank(model, lists[:50])  # compile
        for label, min_shared in (("shared", None), ("unshared", 10**9)):
            walls, cpus = [], []
            for _ in range(repeats):
                wall, cpu = time.perf_counter(), time.process_time()
                if min_shared is None:
                    rerank(model, lists)
                else:
                    score_lines(model, texts, min_shared=min_shared)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            out[label] = {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
                          "per_s_wall": len(texts) / statistics.median(walls),
                          "per_s_2cores_from_cpu": 2 * len(texts) / statistics.median(cpus)}  # fmt: skip
    return out


def spot_scores(model, text: str, edits, min_surprisal: float, min_gain: float) -> dict:
    with blas.thread_limit(2):
        started = time.perf_counter()
        reports = spot(model, text, min_surprisal, min_gain)
        seconds = time.perf_counter() - started
    starts = np.array([e.start for e in edits])
    ends = np.array([e.end for e in edits])
    hit = np.zeros(len(edits), dtype=bool)
    correct = 0
    for r in reports:
        near = np.flatnonzero((starts - 1 <= r.position) & (r.position <= ends))
        correct += bool(near.size)
        hit[near] = True
    return {"min_surprisal": min_surprisal, "min_gain": min_gain, "reports": len(reports), "confusions": len(edits),
            "precision": correct / max(len(reports), 1), "recall": float(hit.mean()), "seconds": seconds}  # fmt: skip


def table(results: dict) -> str:
    rows = ["| system | lists | top-1 accuracy | CER of the chosen lines |", "|---|---:|---:|---:|"]
    for q in results["rerank"]:
        rows.append(f"| {q['system']} | {q['lists']:,} | {100 * q['top1']:.2f}% | {100 * q['cer']:.3f}% |")
    rows += ["", "| model | candidates/s, wall (prefix shared / not) | per 2 CPU-seconds (shared / not) |",
             "|---|---:|---:|"]  # fmt: skip
    for name, t in results["throughput"].items():
        rows.append(f"| {name} | {t['shared']['per_s_wall']:,.0f} / {t['unshared']['per_s_wall']:,.0f} | "
                    f"{t['shared']['per_s_2cores_from_cpu']:,.0f} / {t['unshared']['per_s_2cores_from_cpu']:,.0f} |")
    rows += ["", "| model | spot thresholds (bits) | reports | precision | recall |", "|---|---|---:|---:|---:|"]
    for name, runs in results["spot"].items():
        for label in ("test", "test_defaults"):
            r = runs[label]
            rows.append(f"| {name} | --min-surprisal {r['min_surprisal']:g} --min-gain {r['min_gain']:g}"
                        f"{' (chosen on the first half)' if label == 'test' else ' (defaults)'} | {r['reports']} | "
                        f"{r['precision']:.3f} | {r['recall']:.3f} |")  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpora/anna.txt"))
    parser.add_argument("--model", type=Path, action="append", default=[], help="a model trained on the training "
                        "split (repeat for several)")  # fmt: skip
    parser.add_argument("--train-minutes", type=float, help="train one first (with --workdir)")
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESCORING.json"))
    parser.add_argument("--quick", action="store_true", help="a smoke test: 200 lists, 30k characters to spot")
    parser.add_argument("extra", nargs="*", help="extra `charrnn train` options (after --)")
    args = parser.parse_args()
    train_text, val_text = split(args.corpus)
    results: dict = {"start": machine_load(), "split": {"train_chars": len(train_text), "val_chars": len(val_text)}}
    paths = list(args.model)
    if args.train_minutes:
        trained, results["training"] = train(train_text, val_text, args.workdir, args.train_minutes, args.extra)
        paths.append(trained)
    if not paths:
        parser.error("give --model or --train-minutes")
    lists, truths, lines, kinds = make_lists(val_text)
    if args.quick:
        lists, truths, lines, kinds, val_text = lists[:200], truths[:200], lines[:200], kinds[:200], val_text[:30000]
    noisy, edits = corrupt(val_text, 0.01, np.random.default_rng(1))
    half = noisy.index("\n", len(noisy) // 2) + 1
    tune_edits = [e for e in edits if e.end <= half]
    test_edits = [type(e)(e.start - half, e.end - half, e.kind) for e in edits if e.start >= half]
    results.update(models={}, rerank=[], errors_by_kind={}, throughput={}, spot={})
    for path in paths:
        model, meta, _ = load_checkpoint(path)
        name = f"charrnn {path.name}"
        results["models"][name] = {"path": str(path), "config": meta["config"], "steps": meta.get("step"),
                                   "best_val_nats": meta.get("best_val_loss"),
                                   "train_config": meta.get("train_config")}  # fmt: skip
        log(f"[rescoring] {name}: {len(lists)} lists")
        with blas.thread_limit(2):
            choices = [r.best for r in rerank(model, lists)]
        results["rerank"].append(quality(name, choices, lists, truths, lines))
        wrong = [kinds[i][c] for i, (c, t) in enumerate(zip(choices, truths, strict=True)) if c != t]
        results["errors_by_kind"][name] = {k: sum(k in w for w in wrong) for k in sorted({k for w in wrong for k in w})}
        results["throughput"][name] = throughput(model, lists)
        log(f"[rescoring] {name}: spotting")
        tune = [spot_scores(model, noisy[:half], tune_edits, s, g) for s, g in GRID]
        eligible = [r for r in tune if r["recall"] >= 0.6] or tune
        chosen = max(eligible, key=lambda r: (r["precision"] >= 0.8, r["precision"] + r["recall"]))
        test = noisy[half:]
        results["spot"][name] = {"tuning": tune,
                                 "test": spot_scores(model, test, test_edits, *(chosen[k] for k in THRESHOLDS)),
                                 "test_defaults": spot_scores(model, test, test_edits, *DEFAULTS)}  # fmt: skip
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    log("[rescoring] the 5-gram")
    ngram = ngram_choices(model, train_text, lists)
    results["rerank"].append(quality("Kneser-Ney 5-gram", ngram, lists, truths, lines))
    results["rerank"].append(quality("first candidate", [0] * len(lists), lists, truths, lines))
    results["end"] = machine_load()
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(table(results))


if __name__ == "__main__":
    main()
