"""charrnn.distributed throughput: one vs two local Dask workers on 10,000 documents of ~500 characters, the
per-task overhead, and the figures the scaling estimate in docs/distributed.md is built from.

    PYTHONPATH=. python benchmarks/distributed.py --out benchmarks/DISTRIBUTED.json   # ~3 min on 2 quiet cores
    PYTHONPATH=. python benchmarks/distributed.py --quick --out /tmp/d.json            # 1,000 documents: smoke test

Documents: slices of 400-600 characters (uniform, seeded) of tiny Shakespeare when /work/shared/corpora has it,
else of random text over the same 65 characters, written as one JSON-lines file. Model: 1 x H tanh, float32,
the corpus's 65-character vocabulary, random weights (the cost of scoring does not depend on the weights).

Runs, each timed from the first task submitted to the last row written (`RunSummary.seconds`; starting the
cluster and the workers' warm-up are reported apart, they are paid once per run of the command):

    one process      `--engine local --threads 1`: the reference, and the bytes every other run must equal
    dask, 1 worker   a LocalCluster of one worker process (1 thread)
    dask, 2 workers  the same with two: speed-up = (1-worker seconds) / (2-worker seconds), target >= 1.8x

Per-task overhead, two ways: (a) from each run, (workers x wall seconds - seconds inside the task function) /
tasks: everything a task costs besides its work, idle tail included; (b) no-op tasks pushed through the same
bounded submission on one worker, with and without a typical task's documents as payload: wall seconds per
task is what the driver + scheduler + wire add per task when nothing else limits. The load average before and
after is recorded: the machine is shared, and two workers on two cores slow down as soon as anything else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# this file's name would shadow Dask's `distributed` package: take its directory off the path (Python put it
# first), load system.py by path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

SHAKESPEARE = Path("/work/shared/corpora/tinyshakespeare.txt")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_documents(path: Path, count: int, seed: int) -> tuple[str, int]:
    """`count` JSON lines {"id", "text"}; returns (the alphabet, total characters)."""
    rng = np.random.default_rng(seed)
    if SHAKESPEARE.exists():
        corpus = SHAKESPEARE.read_text(encoding="utf-8")
    else:
        alphabet = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        corpus = "".join(rng.choice(list(alphabet), size=1_000_000))
    total = 0
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(count):
            length = int(rng.integers(400, 601))
            start = int(rng.integers(0, len(corpus) - length))
            text = corpus[start : start + length]
            total += len(text)
            handle.write(json.dumps({"id": f"doc-{i:05d}", "text": text}) + "\n")
    return "".join(sorted(set(corpus))), total


def noop(payload) -> int:
    return len(payload) if payload is not None else 0


def task_overhead(engine, payload, tasks: int) -> dict:
    """Per no-op task through the engine's bounded submission (2 in flight per worker): wall ms, and CPU ms of
    this process — the driver, and for a LocalCluster the scheduler and nannies too — less its idle rate."""
    list(engine.map(noop, [payload] * 4))  # connections and the function's pickle warmed up
    idle_wall, idle_cpu = time.perf_counter(), time.process_time()
    time.sleep(1.0)
    idle_rate = (time.process_time() - idle_cpu) / (time.perf_counter() - idle_wall)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in engine.map(noop, [payload] * tasks):
        pass
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"tasks": tasks, "seconds": seconds, "ms_per_task": 1e3 * seconds / tasks,
            "tasks_per_second": tasks / seconds, "driver_idle_cpu_fraction": idle_rate,
            "driver_cpu_ms_per_task": 1e3 * (cpu - idle_rate * seconds) / tasks}  # fmt: skip


def projected(one: list[dict], two: list[dict]) -> float:
    """An estimate, not a measurement, for a machine whose cores are free: each worker busy for the CPU seconds
    its tasks took (the same work whatever the number of workers), the last task's half-idle tail included, and
    never faster than the driver's own CPU seconds (reading, pickling, writing) allow."""

    def seconds(row: dict) -> float:
        work = row["cpu_seconds"] / row["workers"] + (row["workers"] - 1) * row["mean_task_cpu_seconds"] / 2
        return max(work, row["driver_cpu_seconds"])

    return float(np.mean([seconds(r) for r in one]) / np.mean([seconds(r) for r in two]))


def run(label, engine_factory, spec, inputs, output, models, task_chars, noop=True) -> dict:
    from charrnn.distributed import run_documents

    start = time.perf_counter()
    with engine_factory() as engine:
        started = time.perf_counter() - start
        driver_cpu = time.process_time()
        summary = run_documents(spec, inputs, engine, output, progress=False, task_chars=task_chars,
                                shipped=models)  # fmt: skip
        driver_cpu = time.process_time() - driver_cpu
        reports = engine.worker_reports() if hasattr(engine, "worker_reports") else {}
        extra = {}
        if engine.name == "dask" and noop:
            first = next(iter(spec_documents(inputs, task_chars)))
            extra["noop_empty"] = task_overhead(engine, None, 200)
            extra["noop_with_documents"] = task_overhead(engine, first, 200)
            extra["noop_payload_bytes"] = sum(len(d.body or "") for d in first)
    workers = max(1, getattr(engine, "workers", 1))
    row = {"label": label, "workers": workers, "start_seconds": started, **summary.to_dict(),
           "docs_per_second": summary.written / summary.seconds,
           "chars_per_second": None, "mean_task_seconds": summary.busy_seconds / summary.tasks,
           "mean_task_cpu_seconds": summary.cpu_seconds / summary.tasks,
           "cpu_share": summary.cpu_seconds / summary.busy_seconds, "driver_cpu_seconds": driver_cpu,
           "overhead_ms_per_task": 1e3 * (workers * summary.seconds - summary.busy_seconds) / summary.tasks,
           "warm_up_seconds": [r.get("warm_up_seconds") for r in reports.values()], **extra}  # fmt: skip
    log(f"{label}: {summary.seconds:.1f} s, {row['docs_per_second']:,.0f} documents/s, {summary.tasks} tasks")
    return row


def driver_rates(inputs, task_chars: int, rows_path: Path) -> dict:
    """What one driver process sustains, alone: reading documents into tasks and pickling them (the feed), and
    encoding result rows as JSON (the output). At scale the driver, not the workers, may set the pace."""
    import pickle

    start = time.perf_counter()
    chars = docs = 0
    for task in spec_documents(inputs, task_chars):
        pickle.dumps(task)
        docs += len(task)
        chars += sum(d.size for d in task)
    feed = time.perf_counter() - start
    rows = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines()]
    start = time.perf_counter()
    size = sum(len(json.dumps(row, ensure_ascii=False)) + 1 for row in rows)
    write = time.perf_counter() - start
    return {"feed_chars_per_second": chars / feed, "feed_docs_per_second": docs / feed,
            "rows_per_second": len(rows) / write, "bytes_per_row": size / len(rows)}  # fmt: skip


def spec_documents(inputs, task_chars):
    from charrnn.distributed import form_tasks, iter_documents

    return form_tasks(iter_documents(inputs), task_chars)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each worker count, alternating")
    parser.add_argument("--quick", action="store_true", help="1,000 documents, 1 repeat")
    parser.add_argument("--out", type=Path, default=None, help="JSON file [default: none]")
    args = parser.parse_args()
    count = 1000 if args.quick else args.documents
    args.repeats = 1 if args.quick else args.repeats

    import importlib.util

    loader = importlib.util.spec_from_file_location("bench_system", ROOT / "benchmarks" / "system.py")
    system = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(system)

    from charrnn.distributed import DaskEngine, JobSpec, LocalEngine, default_task_chars, prepare_models
    from charrnn.model import Model, ModelConfig, save_checkpoint
    from charrnn.vocab import Vocab

    info = system.machine_info(ROOT)
    with tempfile.TemporaryDirectory(prefix="charrnn-dist-bench-") as tmp:
        tmp = Path(tmp)
        alphabet, characters = make_documents(tmp / "docs.jsonl", count, args.seed)
        vocab = Vocab(alphabet)
        model = Model.initialize(ModelConfig(len(vocab), args.hidden, 1, "tanh", "float32"), vocab,
                                 np.random.default_rng(args.seed))  # fmt: skip
        save_checkpoint(tmp / "model.npz", model, {}, {})
        refs, models = prepare_models([tmp / "model.npz"])
        spec = JobSpec("score", tuple(refs))
        task_chars = default_task_chars(spec, {"model": model})
        inputs = [tmp / "docs.jsonl"]
        log(f"{count:,} documents, {characters:,} characters, H = {args.hidden}, {task_chars:,} characters a task")
        rows = [run("one process", lambda: LocalEngine(threads=1), spec, inputs, tmp / "local.jsonl", models,
                    task_chars)]  # fmt: skip
        for repeat in range(args.repeats):  # 1 and 2 workers alternate, so a change of load hits both alike
            for workers in (1, 2) if repeat % 2 == 0 else (2, 1):
                rows.append(run(f"dask, {workers} worker{'s' * (workers > 1)}", partial(DaskEngine, workers=workers),
                                spec, inputs, tmp / f"d{workers}-{repeat}.jsonl", models, task_chars,
                                noop=repeat == 0))  # fmt: skip
        driver = driver_rates(inputs, task_chars, tmp / "local.jsonl")
        reference = (tmp / "local.jsonl").read_bytes()
        identical = all(path.read_bytes() == reference for path in tmp.glob("d*-*.jsonl"))
    for row in rows:
        row["chars_per_second"] = characters / row["seconds"]
    pairs = [(a["seconds"], b["seconds"]) for a, b in zip(rows[1::2], rows[2::2], strict=True)]
    ratios = [(one / two if a["workers"] == 1 else two / one) for (one, two), a in zip(pairs, rows[1::2],
                                                                                      strict=True)]  # fmt: skip
    one = [r for r in rows if r["workers"] == 1 and r["label"] != "one process"]
    two = [r for r in rows if r["workers"] == 2]
    flops = 2.0 * (args.hidden**2 + args.hidden * len(alphabet))
    result = {
        "machine": info, "load_average_at_end": os.getloadavg(), "documents": count, "characters": characters,
        "hidden": args.hidden, "vocab_size": len(alphabet), "task_chars": task_chars, "runs": rows,
        "speedups_2_over_1_workers": ratios, "speedup_2_over_1_workers": float(np.exp(np.mean(np.log(ratios)))),
        "target_speedup": 1.8, "identical_outputs": identical,
        "one_core_gflops": rows[0]["chars_per_second"] * flops / 1e9, "driver": driver,
        "projected_speedup_with_free_cores": projected(one, two),
    }  # fmt: skip
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {args.out}")


def table(result: dict) -> str:
    lines = [
        f"{result['documents']:,} documents, {result['characters']:,} characters; 1 x {result['hidden']} tanh, "
        f"float32, V = {result['vocab_size']}; {result['task_chars']:,} characters a task; load average "
        f"{result['machine']['load_average_at_start'][0]:.2f} before, {result['load_average_at_end'][0]:.2f} after",
        "",
        "| run | seconds | documents/s | chars/s | tasks | s a task | CPU s a task | CPU share | overhead ms a task |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        cells = [r["label"], f"{r['seconds']:.1f}", f"{r['docs_per_second']:,.0f}", f"{r['chars_per_second']:,.0f}",
                 str(r["tasks"]), f"{r['mean_task_seconds']:.2f}", f"{r['mean_task_cpu_seconds']:.2f}",
                 f"{r['cpu_share']:.0%}", f"{r['overhead_ms_per_task']:.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    each = ", ".join(f"{r:.2f}x" for r in result["speedups_2_over_1_workers"])
    lines.append(f"speed-up, 2 workers over 1: **{result['speedup_2_over_1_workers']:.2f}x** (each pair: {each}; "
                 f"target 1.8x); estimate with both cores free: {result['projected_speedup_with_free_cores']:.2f}x; "
                 f"outputs bit-identical across runs: {result['identical_outputs']}; one core: "
                 f"{result['one_core_gflops']:.1f} GFLOP/s; cluster start "
                 f"{max(r['start_seconds'] for r in result['runs']):.1f} s at most")  # fmt: skip
    for r in result["runs"]:
        if "noop_empty" in r:
            empty, full = r["noop_empty"], r["noop_with_documents"]
            lines.append(f"no-op tasks, {r['label']}: {empty['ms_per_task']:.1f} ms a task empty "
                         f"({empty['driver_cpu_ms_per_task']:.1f} ms CPU of driver + scheduler), "
                         f"{full['ms_per_task']:.1f} ms with a task's documents, {r['noop_payload_bytes']:,} "
                         f"characters ({full['driver_cpu_ms_per_task']:.1f} ms CPU)")  # fmt: skip
    d = result["driver"]
    lines.append(f"driver alone: reads and pickles {d['feed_chars_per_second'] / 1e6:.1f} M characters/s "
                 f"({d['feed_docs_per_second']:,.0f} documents/s) into tasks; encodes {d['rows_per_second']:,.0f} "
                 f"result rows/s ({d['bytes_per_row']:.0f} bytes a row)")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
