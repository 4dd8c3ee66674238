"""Documents mode on names.txt (makemore's data set): test loss, what the samples are, training throughput.

    python benchmarks/documents.py ../shared/corpora/names.txt [--out benchmarks/DOCUMENTS.json]
        [--workdir DIR] [--skip-train] [--quick] [-- extra charrnn train options]

1. The test set is makemore's recipe: 1,000 names drawn by a seeded permutation (numpy, seed 42) are
   held out; the rest is written to train.txt.
2. `charrnn train train.txt --documents lines` with every setting at documents mode's default (the
   validation documents come out of train.txt), timed; `uptime` before and after records what else ran.
3. `charrnn score MODEL test.txt --documents --json`: mean nats per character of the test names, the end
   symbol counted (makemore's figure), for the final model and the best-by-validation one.
4. `charrnn sample MODEL -n 1000 --seed 0 --json`: the share of new names, names in the training split,
   in the validation split (the model knows both from its checkpoint) and, among the new, in the test set.
5. Throughput: training steps of the same model (same size, batch, sequence length, dropout) on the
   same names, as documents (packed rows, resets, padding weights) and as one stream (the names joined by
   newlines: stream mode), on one thread, 4 rounds alternating which goes first; characters per CPU-second
   (the figure compared: a shared machine's load moves wall-clock rates by 30% between neighbouring
   runs, CPU time much less) and per wall-clock second, medians. Characters are real characters
   (documents: not padding; the end symbol counts as one, as the newline does in the stream).

Prints a markdown table on stdout and writes every number to the JSON file. `--quick` trains 20 steps
and times 5 steps (a smoke test: the numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TEST_NAMES, TEST_SEED = 1000, 42
TARGET, STRETCH, BIGRAM = 1.99, 1.92, 2.48  # makemore: WaveNet-style MLP, transformer, bigram (nats/char)


def charrnn(*args: str, capture: bool = True) -> str:
    result = subprocess.run([sys.executable, "-m", "charrnn", *args], check=True, text=True,
                            capture_output=capture)  # fmt: skip
    return result.stdout if capture else ""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def split(corpus: Path, workdir: Path) -> tuple[Path, Path, list[str], list[str]]:
    names = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    order = np.random.default_rng(TEST_SEED).permutation(len(names))
    test = [names[i] for i in order[:TEST_NAMES]]
    train = [names[i] for i in order[TEST_NAMES:]]
    train_path, test_path = workdir / "train.txt", workdir / "test.txt"
    train_path.write_text("\n".join(train) + "\n", encoding="utf-8")
    test_path.write_text("\n".join(test) + "\n", encoding="utf-8")
    return train_path, test_path, train, test


def train_default(train_path: Path, model: Path, extra: list[str]) -> dict:
    before = uptime()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    log = subprocess.run([sys.executable, "-m", "charrnn", "train", str(train_path), "--documents", "lines", "-o",
                          str(model), "-q", "--sample-every", "0", *extra], check=True, text=True,
                         capture_output=True).stderr  # fmt: skip
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_after.ru_utime - cpu_before.ru_utime + cpu_after.ru_stime - cpu_before.ru_stime
    sys.stderr.write(log)
    stopped = [line for line in log.splitlines() if line.startswith("stopped")]
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "uptime_before": before,
            "uptime_after": uptime(), "log_header": log.splitlines()[:3], "stopped": stopped[-1] if stopped else None,
            "extra_options": extra}  # fmt: skip


def test_loss(model: Path, test_path: Path) -> dict:
    rows = charrnn("score", str(model), str(test_path), "--documents", "--json").splitlines()
    return json.loads(rows[-1])  # the document_scores summary


def samples(model: Path, test: list[str], count: int) -> dict:
    rows = [json.loads(line) for line in charrnn("sample", str(model), "-n", str(count), "--seed", "0",
                                                 "--json").splitlines()]  # fmt: skip
    statuses = [row["status"] for row in rows]
    test_set = set(test)
    out = {status: statuses.count(status) / len(rows) for status in ("new", "in-train", "in-validation")}
    out["new_but_in_test"] = sum(r["status"] == "new" and r["text"] in test_set for r in rows) / len(rows)
    out["distinct"] = len({r["text"] for r in rows}) / len(rows)
    out["incomplete"] = sum(not r["complete"] for r in rows) / len(rows)
    out["examples"] = [r["text"] for r in rows[:20]]
    return out


def throughput(train: list[str], model_path: Path, steps: int, repeats: int) -> dict:
    """chars/s of training steps, documents vs stream, same model and batch shape (module docstring)."""
    from charrnn.documents import DocumentBatches
    from charrnn.kernels import blas
    from charrnn.model import Model, load_checkpoint
    from charrnn.vocab import Vocab
    from charrnn.workspace import Workspace

    trained, meta, _ = load_checkpoint(model_path)
    config = meta["train_config"]
    B, T, dropout = config["batch_size"], config["seq_len"], config["dropout"]
    docs_vocab = trained.vocab
    stream_vocab = Vocab(sorted(set("".join(train)) | {"\n"}))
    assert len(stream_vocab) == len(docs_vocab)  # the same model size: V letters + newline / end symbol
    documents = [docs_vocab.encode(name) for name in train]
    packed = DocumentBatches(documents, docs_vocab.end_id, B, T, seed=0)
    stream_ids = stream_vocab.encode("\n".join(train) + "\n")
    model = Model(trained.config, stream_vocab, trained.flat.copy())
    workspace = Workspace(model)
    rates: dict[str, list[float]] = {"documents": [], "stream": []}
    walls: dict[str, list[float]] = {"documents": [], "stream": []}
    state = model.initial_state(B)
    grad = np.empty_like(model.flat)
    per_stream = (len(stream_ids) - 1) // B

    def stream_chunk(index: int):
        starts = np.arange(B) * per_stream + (index * T) % (per_stream - T)
        window = starts[:, None] + np.arange(T + 1)
        block = stream_ids[window]
        return block[:, :-1], block[:, 1:]

    with blas.thread_limit(1):
        workspace.loss_and_grads(*stream_chunk(0), state, grad, dropout)  # compile both paths first
        workspace.loss_and_grads(*packed.chunk(0, 0)[:2], state, grad, dropout, 0, *packed.chunk(0, 0)[2:])
        for round_index in range(repeats):
            for mode in ("documents", "stream") if round_index % 2 == 0 else ("stream", "documents"):
                chars, cpu, started = 0, time.process_time(), time.perf_counter()
                for step in range(steps):
                    if mode == "documents":
                        x, y, weights, resets = packed.chunk(step % packed.chunks_per_epoch, step // 50)
                        workspace.loss_and_grads(x, y, state, grad, dropout, step, weights, resets)
                        chars += int(weights.sum())
                    else:
                        workspace.loss_and_grads(*stream_chunk(step), state, grad, dropout, step)
                        chars += B * T
                rates[mode].append(chars / (time.process_time() - cpu))
                walls[mode].append(chars / (time.perf_counter() - started))
    docs, stream = statistics.median(rates["documents"]), statistics.median(rates["stream"])
    wall_docs, wall_stream = statistics.median(walls["documents"]), statistics.median(walls["stream"])
    return {"batch_size": B, "seq_len": T, "hidden": trained.config.hidden_size, "layers": trained.config.num_layers,
            "threads": 1, "documents_chars_per_cpu_s": round(docs), "stream_chars_per_cpu_s": round(stream),
            "ratio": round(docs / stream, 3), "documents_chars_per_s": round(wall_docs),
            "stream_chars_per_s": round(wall_stream), "wall_ratio": round(wall_docs / wall_stream, 3),
            "padding": round(packed.padding, 4), "runs_cpu": {k: [round(v) for v in r] for k, r in rates.items()},
            "runs_wall": {k: [round(v) for v in r] for k, r in walls.items()}, "uptime": uptime()}  # fmt: skip


def table(results: dict) -> str:
    t, s, x = results["test"], results["samples"], results["throughput"]
    best = results.get("test_best")
    rows = [
        ("test loss, nats/char (end symbol counted), final model", f"{t['nats_per_char']:.4f}",
         f"<= {TARGET} (stretch <= {STRETCH}); makemore bigram {BIGRAM}"),
        ("test loss, best-by-validation model", f"{best['nats_per_char']:.4f}" if best else "-", ""),
        ("test loss, nats/name", f"{t['nats_per_document']:.3f}", ""),
        ("training time (default settings)", f"{results['train']['seconds']:.0f} s wall"
         + (f", {results['train']['cpu_seconds']:.0f} CPU-s" if "cpu_seconds" in results["train"] else ""),
         f"<= 600 s on 2 cores; load: {results['train']['uptime_before'].split('load average:')[-1].strip()}"),
        ("1,000 samples: new / in-train / in-validation",
         f"{s['new']:.1%} / {s['in-train']:.1%} / {s['in-validation']:.1%}",
         f"new and in the test set: {s['new_but_in_test']:.1%}; distinct {s['distinct']:.1%}"),
        ("training chars per CPU-second: documents vs stream, same model", f"{x['documents_chars_per_cpu_s']:,} vs "
         f"{x['stream_chars_per_cpu_s']:,} ({x['ratio']:.2f}x)", f"documents >= 0.8x stream; wall clock "
         f"{x['documents_chars_per_s']:,} vs {x['stream_chars_per_s']:,} ({x['wall_ratio']:.2f}x), one thread"),
    ]  # fmt: skip
    lines = ["| measure | result | target / context |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/documents.json"))
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/results/documents"))
    parser.add_argument("--skip-train", action="store_true", help="reuse the model in --workdir")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("extra", nargs="*", help="extra `charrnn train` options (after --)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    train_path, test_path, train, test = split(args.corpus, args.workdir)
    model = args.workdir / "names.npz"
    extra = args.extra + (["--steps", "20"] if args.quick else [])
    results: dict = {"corpus": str(args.corpus), "test_names": TEST_NAMES, "test_seed": TEST_SEED,
                     "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    if not args.skip_train:
        results["train"] = train_default(train_path, model, extra)
    elif args.out.exists():
        results["train"] = json.loads(args.out.read_text())["train"]
    results["model"] = json.loads(charrnn("info", str(model), "--json"))
    results["test"] = test_loss(model, test_path)
    best = model.with_name("names.best.npz")
    results["test_best"] = test_loss(best, test_path) if best.exists() else None
    results["samples"] = samples(model, test, 50 if args.quick else 1000)
    results["throughput"] = throughput(train, model, 5 if args.quick else 80, 2 if args.quick else 4)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
