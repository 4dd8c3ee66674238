"""charrnn's benchmark (issue 4): throughput against PyTorch and against the machine's limits, start-up
time and memory. Prints markdown tables to stdout and writes every number to a JSON file.

    python benchmarks/bench.py                    # the full run: ~10 minutes on a quiet 2-core machine
    python benchmarks/bench.py --quick            # one small configuration, 1 repeat, a few steps: a smoke test
    python benchmarks/bench.py --hidden 256 --batch 64 --threads 2 --repeats 5 --out h256.json
    python benchmarks/bench.py --startup          # only the start-up section (likewise --memory, --throughput)

Sections (all three unless some are named):
  throughput  for each thread count and H, one fresh worker process per framework (workers.py) measures,
              for each B: training chars/s (forward + BPTT + clip + Adam, what charrnn.train does per step),
              scoring chars/s (`Model.loss`: forward with the loss at every position), the BLAS bound of the
              same matrix products; and per H: sampling chars/s (one stream, and 64 at once) and
              `score_text` on one long text. PyTorch (torch_model.py) runs the same model when importable.
  startup     `import charrnn`, and the first (compiling) and second (cached) `charrnn sample -n 100`.
  memory      peak RSS of `charrnn train` on a 200 MB synthetic corpus.

Every rate is steady state (JIT compilation and warm-up excluded): the median of --repeats timed blocks of
about --seconds each. FLOPs per character (formulas in report.py, also stored in the JSON):
forward 2H² + 2HV (the one-hot input is a lookup: 0 FLOPs), backward 4H² + 4HV, training 6H² + 6HV.
"% peak" is achieved GFLOP/s over PEAK_GFLOPS_PER_CORE × threads; "BLAS bound" is the chars/s that the
same matrix products reach through numpy's BLAS alone with the same threads (workers.blas_bound).

Timings mean nothing on a busy machine: the JSON records the load average at the start, and a warning
is printed when it is above 0.5.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from report import FLOPS_FORMULA, PEAK_GFLOPS_PER_CORE, markdown, summarize, targets
from system import log, machine_info, memory, startup

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # the checkout whose charrnn is benchmarked
WORKER_TIMEOUT = 900  # seconds; a worker takes ~30-60 s in the full run

FULL = {
    "hidden": [128, 256, 512],
    "batch": [1, 32, 64],
    "threads": [1, 2],
    "repeats": 3,
    "seconds": 0.4,
    "min_calls": 3,
    "sample_lengths": {"1": 1000, "64": 100},
    "startup_repeats": 3,
    "corpus_mb": 200,
    "memory_steps": 50,
}
QUICK = {
    "hidden": [64],
    "batch": [8],
    "threads": [2],
    "repeats": 1,
    "seconds": 0.0,
    "min_calls": 2,
    "sample_lengths": {"1": 100, "64": 20},
    "startup_repeats": 1,
    "corpus_mb": 5,
    "memory_steps": 5,
}
VOCAB_SIZE, SEQ_LEN = 65, 64


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: one small configuration, 1 repeat")
    parser.add_argument(
        "--out", type=Path, help="JSON file to write (default: benchmarks/results/bench-<UTC time>.json, git-ignored)"
    )
    parser.add_argument("--hidden", type=int_list, help="hidden sizes H (default 128,256,512)")
    parser.add_argument("--batch", type=int_list, help="batch sizes B (default 1,32,64)")
    parser.add_argument("--threads", type=int_list, help="thread counts (default 1,2)")
    parser.add_argument("--repeats", type=int, help="timed blocks per measurement; the median counts (default 3)")
    parser.add_argument("--seconds", type=float, help="target duration of one timed block (default 0.4)")
    parser.add_argument("--corpus-mb", type=float, help="synthetic corpus size for --memory (default 200)")
    parser.add_argument(
        "--peak-per-core",
        type=float,
        default=PEAK_GFLOPS_PER_CORE,
        help=f"fp32 peak GFLOP/s of one core (default {PEAK_GFLOPS_PER_CORE}, this machine's)",
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is importable")
    parser.add_argument("--no-jax", action="store_true", help="skip JAX even when it is importable")
    for section in ("throughput", "startup", "memory"):
        parser.add_argument(f"--{section}", action="store_true", help=f"run the {section} section (see above)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    args.settings = {
        **defaults,
        **{
            key: getattr(args, key)
            for key in ("hidden", "batch", "threads", "repeats", "seconds")
            if getattr(args, key) is not None
        },
    }
    if args.corpus_mb is not None:
        args.settings["corpus_mb"] = args.corpus_mb
    if args.settings["repeats"] < 1:
        parser.error("--repeats must be >= 1")
    named = [s for s in ("throughput", "startup", "memory") if getattr(args, s)]
    args.sections = named or ["throughput", "startup", "memory"]
    return args


def child_env(threads: int | None = None) -> dict:
    """The environment of every child: this checkout after any PYTHONPATH entries (so it wins over an
    installed charrnn, and an explicit PYTHONPATH wins over it); OMP threads for torch."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*filter(None, [env.get("PYTHONPATH")]), str(ROOT)])
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_worker(spec: dict) -> list[dict]:
    """Run workers.py on one spec; its JSON lines, or one error row if it failed."""
    command = [sys.executable, str(HERE / "workers.py"), json.dumps(spec)]
    env = child_env(spec["threads"] if spec["framework"] == "torch" else None)
    try:
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return [{**spec, "kind": "error", "error": f"worker timed out after {WORKER_TIMEOUT} s"}]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0:
        rows.append({**spec, "kind": "error", "error": f"worker exited with status {done.returncode}"})
        log(f"  worker failed: {spec['framework']} H={spec['hidden']} threads={spec['threads']}")
    return rows


def throughput(settings: dict, peers: list[str]) -> list[dict]:
    """All workers: for each thread count and H, charrnn's, then each peer's (PyTorch, JAX)."""
    frameworks = ["charrnn", *peers]
    jobs = [
        (threads, hidden, fw) for threads in settings["threads"] for hidden in settings["hidden"] for fw in frameworks
    ]
    rows: list[dict] = []
    started = time.perf_counter()
    for number, (threads, hidden, framework) in enumerate(jobs, 1):
        log(
            f"[{number}/{len(jobs)}] {framework}, threads={threads}, H={hidden}, B={settings['batch']} "
            f"({time.perf_counter() - started:.0f} s so far)"
        )
        spec = {
            "framework": framework,
            "threads": threads,
            "hidden": hidden,
            "batches": settings["batch"],
            "seq_len": SEQ_LEN,
            "vocab_size": VOCAB_SIZE,
            "repeats": settings["repeats"],
            "seconds": settings["seconds"],
            "min_calls": settings["min_calls"],
            "sample_lengths": settings["sample_lengths"],
        }
        rows.extend(run_worker(spec))
    return rows


def use_checkout() -> None:
    """Put this checkout on this process's path where child_env puts it on the children's."""
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    sys.path.insert(1 + len(entries), str(ROOT))


def has_module(name: str) -> bool:
    """Whether `name` is importable; a charrnn submodule counts only when it lives in the same tree as the
    charrnn package (an editable install of another checkout can serve submodules this tree lacks)."""
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:
        return False
    if spec is None or not name.startswith("charrnn."):
        return spec is not None
    home = importlib.util.find_spec("charrnn").submodule_search_locations
    return spec.origin is not None and str(Path(spec.origin).parent) in list(home or [])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    use_checkout()
    settings, started = args.settings, time.perf_counter()
    spec = importlib.util.find_spec("charrnn")
    if spec is None or spec.origin is None:
        sys.exit(f"charrnn is not importable (looked on PYTHONPATH and in {ROOT})")
    info = machine_info(Path(spec.origin).parent.parent)  # the tree the children import charrnn from
    load = info["load_average_at_start"]
    if load and load[0] > 0.5:
        log(f"warning: load average {load[0]:.2f} — other work is running, timings will be unreliable")
    with_torch = not args.no_torch and has_module("torch")
    with_jax = not args.no_jax and has_module("jax") and has_module("optax")
    if not with_torch:
        log("PyTorch is not importable (or --no-torch): no PyTorch rows")
    if not with_jax:
        log("JAX/optax are not importable (or --no-jax): no JAX rows")
    peers = [name for name, present in (("torch", with_torch), ("jax", with_jax)) if present]
    has_sampler = has_module("charrnn.generate")
    if not has_sampler:
        log("charrnn.generate is missing on this tree: sampling rows and `charrnn sample` start-up are skipped")

    rows = throughput(settings, peers) if "throughput" in args.sections else []
    summary = summarize(rows, args.peak_per_core)
    startup_result = memory_result = None
    if "startup" in args.sections:
        log("start-up")
        startup_result = startup(child_env(), settings["startup_repeats"], has_sampler)
    if "memory" in args.sections:
        log("memory")
        memory_result = memory(child_env(), int(settings["corpus_mb"] * 1e6), settings["memory_steps"])

    top_threads = 2 if 2 in settings["threads"] else max(settings["threads"])
    target_list = targets(summary, startup_result, memory_result, top_threads)
    info.update(
        next(
            (
                {k: v for k, v in r.items() if k not in ("kind", "framework")}
                for r in rows
                if r.get("kind") == "info" and r.get("framework") == "charrnn"
            ),
            {},
        )
    )
    result = {
        "machine": info,
        "settings": {
            **settings,
            "vocab_size": VOCAB_SIZE,
            "seq_len": SEQ_LEN,
            "quick": args.quick,
            "sections": args.sections,
            "torch": with_torch,
            "jax": with_jax,
        },
        "flops": {
            "formula": FLOPS_FORMULA,
            "peak_gflops_per_core": args.peak_per_core,
            "peak_note": "AMD EPYC Zen 4: 32 fp32 FLOP/cycle/core x ~3.55 GHz; % peak uses peak x threads",
        },
        "summary": summary,
        "startup": startup_result,
        "memory": memory_result,
        "targets": target_list,
        "checks": [r for r in rows if r.get("kind") == "check"],
        "errors": [r for r in rows if r.get("kind") == "error"],
        "rows": rows,
        "wall_s": time.perf_counter() - started,
    }
    if args.out is None:
        args.out = HERE / "results" / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
        args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"## charrnn benchmark — {info['cpu_model']}, {info['usable_cores']} cores, {info['date']}\n")
    print(markdown(summary, startup_result, memory_result, target_list))
    log(
        f"done in {result['wall_s']:.0f} s; wrote {args.out}"
        + (f"; {len(result['errors'])} worker error(s)" if result["errors"] else "")
    )
    if result["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
