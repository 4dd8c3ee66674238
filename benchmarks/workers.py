"""Throughput measurements that run inside a fresh worker process: one framework, one thread count, one
hidden size, every batch size.

bench.py starts `python benchmarks/workers.py SPEC`, SPEC being a JSON object

    {"framework": "charrnn" | "torch", "threads": n, "hidden": H, "batches": [B, ...], "seq_len": T,
     "vocab_size": V, "repeats": r, "seconds": s, "min_calls": c, "sample_lengths": {"1": n1, "64": n64}}

and reads one JSON object per line from stdout (one per measurement); progress goes to stderr. A process
per (framework, threads, H) keeps torch's and numba's thread pools from competing (an idle OpenMP pool
spin-waits on the cores the other one needs) and makes every thread count explicit.

Every rate is `steady_rate`: warm-up calls first (JIT compilation or cache load, scratch allocation), not
timed; then `repeats` timed blocks of as many calls as fill `seconds`; the median block's chars/s counts.
Inputs are uniformly random ids: the cost of every measured operation is independent of the data.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

WARMUP_CALLS = 2
CHUNKS = 8  # distinct (inputs, targets) chunks cycled through, as consecutive chunks of streams would be


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(row: dict) -> None:
    """One measurement, as one JSON line on stdout."""
    print(json.dumps(row), flush=True)


def steady_rate(step: Callable[[], object], chars_per_call: int, spec: dict) -> dict:
    """Median chars/s over `repeats` timed blocks of `step()` calls, after untimed warm-up calls.

    A block holds as many calls as fill `seconds` (judged from one call after warm-up), at least
    `min_calls`, so fast and slow configurations are timed for about the same wall time.
    """
    for _ in range(WARMUP_CALLS):
        step()
    start = time.perf_counter()
    step()
    once = time.perf_counter() - start
    calls = max(spec["min_calls"], math.ceil(spec["seconds"] / max(once, 1e-9)))
    rates = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        rates.append(calls * chars_per_call / (time.perf_counter() - start))
    return {
        "chars_per_s": statistics.median(rates),
        "repeat_chars_per_s": rates,
        "calls_per_repeat": calls,
        "chars_per_call": chars_per_call,
    }


def random_chunks(vocab_size: int, batch: int, seq_len: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """CHUNKS (inputs, targets) pairs of (B, T) int64 ids, targets the inputs shifted by one position."""
    rng = np.random.default_rng(seed)
    streams = rng.integers(0, vocab_size, size=(batch, CHUNKS * seq_len + 1))
    return [
        (streams[:, k * seq_len : (k + 1) * seq_len], streams[:, k * seq_len + 1 : (k + 1) * seq_len + 1])
        for k in range(CHUNKS)
    ]


def cycle(chunks: list) -> Callable[[], tuple]:
    """A function returning the chunks in turn, forever."""
    position = [0]

    def next_chunk():
        chunk = chunks[position[0] % len(chunks)]
        position[0] += 1
        return chunk

    return next_chunk


def row(spec: dict, kind: str, batch: int, **fields) -> dict:
    return {
        "framework": spec["framework"],
        "kind": kind,
        "hidden": spec["hidden"],
        "batch": batch,
        "threads": spec["threads"],
        "seq_len": spec["seq_len"],
        "vocab_size": spec["vocab_size"],
        **fields,
    }


# ---- charrnn ----


def bench_vocab(vocab_size: int):
    """V distinct characters, "\\n" among them (the sampler primes with it when the vocabulary has it)."""
    from charrnn.vocab import Vocab

    return Vocab("\n" + "".join(chr(32 + i) for i in range(vocab_size - 1)))


def charrnn_model(spec: dict):
    from charrnn.model import Model, ModelConfig

    config = ModelConfig(vocab_size=spec["vocab_size"], hidden_size=spec["hidden"], num_layers=1)
    return Model.initialize(config, bench_vocab(spec["vocab_size"]), np.random.default_rng(0))


def _workspace(model):
    """The object that runs `loss` / `loss_and_grads`: a Workspace since the kernels became a package, the
    Model itself before (so the same harness times an older checkout)."""
    try:
        from charrnn.workspace import Workspace
    except ImportError:
        return model
    return Workspace(model)


def charrnn_train_step(spec: dict, batch: int) -> Callable[[], float]:
    """One training step as `charrnn.train.train` takes it: forward + BPTT (`loss_and_grads`), then
    global-norm clipping and Adam (`apply_update`), hidden state carried. No dropout (the PyTorch model has
    none either) and a constant learning rate."""
    from charrnn.train import TrainConfig, TrainState, apply_update

    try:
        from charrnn.train import optimizer_slots
    except ImportError:  # moved to charrnn.checkpointing
        from charrnn.checkpointing import optimizer_slots

    model = charrnn_model(spec)
    workspace = _workspace(model)
    config = TrainConfig(seq_len=spec["seq_len"], batch_size=batch)
    state = TrainState(lr=config.lr)
    state.optimizer = {slot: np.zeros_like(model.flat) for slot in optimizer_slots(config.optimizer)}
    carried = {"hidden": model.initial_state(batch), "grad": np.empty_like(model.flat)}
    next_chunk = cycle(random_chunks(spec["vocab_size"], batch, spec["seq_len"]))

    def step() -> float:
        inputs, targets = next_chunk()
        loss, carried["grad"], carried["hidden"] = workspace.loss_and_grads(
            inputs, targets, carried["hidden"], carried["grad"]
        )
        apply_update(model, carried["grad"], state, config)
        state.step += 1
        return loss

    return step


def charrnn_score_step(spec: dict, batch: int) -> Callable[[], float]:
    """Forward pass over a (B, T) chunk, loss at every position (`Workspace.loss`), hidden state carried."""
    model = charrnn_model(spec)
    workspace = _workspace(model)
    hidden = [model.initial_state(batch)]
    next_chunk = cycle(random_chunks(spec["vocab_size"], batch, spec["seq_len"]))

    def step() -> float:
        inputs, targets = next_chunk()
        loss, hidden[0] = workspace.loss(inputs, targets, hidden[0])
        return loss

    return step


def blas_products(rows: int, hidden: int, seq_len: int, vocab: int, training: bool) -> Callable[[], None]:
    """The matrix products of one (rows, T) chunk, through numpy's BLAS and nothing else (float32).

    Forward: T recurrence products (rows, H)·(H, H), then the output product (T·rows, H)·(H, V).
    Training adds T-1 products (rows, H)·(H, H)ᵀ back through time and the three big gradient products
    dWy = topᵀ·dlogits, dtop = dlogits·Wyᵀ, dWh = h_prevᵀ·dpre. Operands are fixed random arrays (the
    values never evolve, so no denormals appear); outputs are preallocated (`out=`), so nothing else is
    timed but numpy's dispatch (~1 µs per call, which dominates at B = 1).
    """
    rng = np.random.default_rng(0)
    H, V, T, f32 = hidden, vocab, seq_len, np.float32
    Wh, Wy = rng.standard_normal((H, H)).astype(f32), rng.standard_normal((H, V)).astype(f32)
    h = rng.standard_normal((T, rows, H)).astype(f32)
    pre, dpre = np.empty_like(h), rng.standard_normal((T, rows, H)).astype(f32)
    logits = np.empty((T * rows, V), f32)
    dWh, dWy, dtop = np.empty((H, H), f32), np.empty((H, V), f32), np.empty((T * rows, H), f32)
    top, flat_dpre = h.reshape(T * rows, H), dpre.reshape(T * rows, H)

    def run() -> None:
        for t in range(T):
            np.dot(h[t], Wh, out=pre[t])
        np.dot(top, Wy, out=logits)
        if training:
            for t in range(T - 1, 0, -1):
                np.dot(dpre[t], Wh.T, out=pre[t - 1])
            np.dot(top.T, logits, out=dWy)
            np.dot(logits, Wy.T, out=dtop)
            np.dot(top.T, flat_dpre, out=dWh)

    return run


def blas_bound(spec: dict, batch: int, training: bool) -> dict:
    """chars/s of the BLAS products alone, the better of two ways to use `threads` cores:
    "blas-threads": the whole batch's products with `threads` BLAS threads;
    "blas-shards": the batch split into S = min(B, threads) shards, one shard's products timed on one
    BLAS thread, assuming the S shards run side by side on S cores (charrnn's own strategy; an ideal)."""
    from threadpoolctl import threadpool_limits

    H, T, V, threads = spec["hidden"], spec["seq_len"], spec["vocab_size"], spec["threads"]
    with threadpool_limits(limits=threads, user_api="blas"):
        whole = steady_rate(blas_products(batch, H, T, V, training), T * batch, spec)
    result = {"blas_threads_chars_per_s": whole["chars_per_s"], "blas_shards_chars_per_s": None}
    shards = min(batch, threads)
    if shards > 1:
        rows = math.ceil(batch / shards)
        with threadpool_limits(limits=1, user_api="blas"):
            shard = steady_rate(blas_products(rows, H, T, V, training), T * rows, spec)
        result["blas_shards_chars_per_s"] = shard["chars_per_s"] * batch / rows
    result["chars_per_s"] = max(v for v in (result["blas_threads_chars_per_s"], result["blas_shards_chars_per_s"]) if v)
    return result


def tree_module(name: str):
    """Import charrnn.<name> only from the tree `charrnn` itself comes from: an editable install of another
    checkout can otherwise serve a submodule this tree lacks, mixing two versions in one package."""
    import importlib
    import importlib.util

    import charrnn

    spec = importlib.util.find_spec(name)
    home = Path(charrnn.__file__).parent
    if spec is None or spec.origin is None or Path(spec.origin).parent != home:
        raise ImportError(f"no {name} in {home}")
    return importlib.import_module(name)


def charrnn_sampling(spec: dict) -> None:
    """`charrnn.generate.sample(...).run()` for one stream and for 64 samples at once, and
    `charrnn.score.score_text` on one long text; skipped rows (with a note) where the modules are missing."""
    try:
        sample = tree_module("charrnn.generate").sample
    except ImportError as error:
        for count in spec["sample_lengths"]:
            emit(row(spec, "sample", int(count), skipped=f"charrnn.generate not available ({error})"))
    else:
        model = charrnn_model(spec)
        for count, length in spec["sample_lengths"].items():
            count = int(count)
            log(f"  charrnn sample H={spec['hidden']} num_samples={count} threads={spec['threads']}")
            rate = steady_rate(
                lambda c=count, n=length: sample(model, n, num_samples=c, seed=0).run(), count * length, spec
            )
            emit(row(spec, "sample", count, variant="sample()", **rate))
    try:
        score_text = tree_module("charrnn.score").score_text
    except ImportError as error:
        emit(row(spec, "score_text", 1, skipped=f"charrnn.score not available ({error})"))
        return
    model = charrnn_model(spec)
    length = spec["sample_lengths"]["1"]
    ids = np.random.default_rng(1).integers(0, spec["vocab_size"], size=length + 1)
    text = "".join(model.vocab.chars[i] for i in ids)
    log(f"  charrnn score_text H={spec['hidden']} threads={spec['threads']}")
    rate = steady_rate(lambda: score_text(model, text), length, spec)
    emit(row(spec, "score_text", 1, variant="score_text()", **rate))


def charrnn_worker(spec: dict) -> None:
    import numba

    import charrnn
    from charrnn import kernels

    blas = getattr(kernels, "blas", kernels)  # a package since the kernels were split; one module before
    with blas.thread_limit(spec["threads"]):
        for batch in spec["batches"]:
            log(f"  charrnn train/score H={spec['hidden']} B={batch} threads={spec['threads']}")
            emit(
                row(
                    spec,
                    "train",
                    batch,
                    variant="charrnn",
                    **steady_rate(charrnn_train_step(spec, batch), batch * spec["seq_len"], spec),
                )
            )
            emit(
                row(
                    spec,
                    "score",
                    batch,
                    variant="charrnn",
                    **steady_rate(charrnn_score_step(spec, batch), batch * spec["seq_len"], spec),
                )
            )
        charrnn_sampling(spec)
    for batch in spec["batches"]:  # outside thread_limit: blas_bound sets the BLAS threads itself
        log(f"  BLAS bound H={spec['hidden']} B={batch} threads={spec['threads']}")
        for kind, training in (("train", True), ("score", False)):
            emit(row(spec, f"blas_{kind}", batch, framework="numpy-blas", **blas_bound(spec, batch, training)))
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        layer = None
    emit(
        {
            "kind": "info",
            "framework": "charrnn",
            "blas_library": _blas_library(blas),
            "numba_threading_layer": layer,
            "numba_num_threads": numba.config.NUMBA_NUM_THREADS,
            "charrnn_imported_from": str(Path(charrnn.__file__).parent),
        }
    )


def _blas_library(blas) -> str:
    """charrnn.kernels.blas.BLAS_LIBRARY (the library the kernels' gemm calls), or numpy's BLAS on older trees."""
    if hasattr(blas, "BLAS_LIBRARY"):
        return blas.BLAS_LIBRARY
    from threadpoolctl import threadpool_info

    return next((info["filepath"] for info in threadpool_info() if info["user_api"] == "blas"), "unknown")


# ---- PyTorch ----


def torch_worker(spec: dict) -> None:
    import torch
    from torch_model import VARIANTS, sample_loop, torch_model, torch_score_step, torch_train_step

    torch.set_num_threads(spec["threads"])
    torch.set_num_interop_threads(1)  # allowed once per process, before any parallel work
    torch.manual_seed(0)
    for batch in spec["batches"]:
        chunks = random_chunks(spec["vocab_size"], batch, spec["seq_len"])
        for variant in VARIANTS:
            log(f"  torch {variant} train/score H={spec['hidden']} B={batch} threads={spec['threads']}")
            model = torch_model(variant, spec["vocab_size"], spec["hidden"])
            rate = steady_rate(torch_train_step(model, cycle(chunks), batch), batch * spec["seq_len"], spec)
            emit(row(spec, "train", batch, variant=variant, **rate))
            model = torch_model(variant, spec["vocab_size"], spec["hidden"])
            rate = steady_rate(torch_score_step(model, cycle(chunks), batch), batch * spec["seq_len"], spec)
            emit(row(spec, "score", batch, variant=variant, **rate))
    for count, length in spec["sample_lengths"].items():
        count = int(count)
        for variant in VARIANTS:
            log(f"  torch {variant} sample H={spec['hidden']} B={count} threads={spec['threads']}")
            model = torch_model(variant, spec["vocab_size"], spec["hidden"])
            rate = steady_rate(lambda m=model, c=count, n=length: sample_loop(m, c, n), count * length, spec)
            emit(row(spec, "sample", count, variant=variant, **rate))
    emit(
        {
            "kind": "info",
            "framework": "torch",
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "torch_config": torch.__config__.parallel_info(),
        }
    )


# ---- JAX ----


def jax_worker(spec: dict) -> None:
    import os

    # XLA sizes its CPU thread pool from the affinity mask: restrict it before jax is imported
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: spec["threads"]]))
    import jax
    from jax_model import init_params, jax_sampler, jax_score_step, jax_train_step

    params = init_params(spec["vocab_size"], spec["hidden"])
    for batch in spec["batches"]:
        chunks = random_chunks(spec["vocab_size"], batch, spec["seq_len"])
        log(f"  jax train/score H={spec['hidden']} B={batch} threads={spec['threads']}")
        rate = steady_rate(jax_train_step(params, cycle(chunks), batch), batch * spec["seq_len"], spec)
        emit(row(spec, "train", batch, variant="jit+scan", **rate))
        rate = steady_rate(jax_score_step(params, cycle(chunks), batch), batch * spec["seq_len"], spec)
        emit(row(spec, "score", batch, variant="jit+scan", **rate))
    for count, length in spec["sample_lengths"].items():
        count = int(count)
        log(f"  jax sample H={spec['hidden']} B={count} threads={spec['threads']}")
        rate = steady_rate(jax_sampler(params, count, length), count * length, spec)
        emit(row(spec, "sample", count, variant="jit+scan", **rate))
    emit({"kind": "check", "framework": "jax", "hidden": spec["hidden"], **jax_gradient_check(spec)})
    emit({"kind": "info", "framework": "jax", "jax_version": jax.__version__,
          "affinity": sorted(os.sched_getaffinity(0))})  # fmt: skip


def jax_gradient_check(spec: dict) -> dict:
    """charrnn's and JAX's loss and gradients on the same weights and chunk (B=4, T=16, float32)."""
    from jax_model import gradients, init_params

    from charrnn.model import Model, ModelConfig, num_params, param_views

    params = init_params(spec["vocab_size"], spec["hidden"], seed=1)
    config = ModelConfig(vocab_size=spec["vocab_size"], hidden_size=spec["hidden"], num_layers=1)
    model = Model(config, bench_vocab(spec["vocab_size"]), np.zeros(num_params(config), np.float32))
    views = model.params
    for name in ("Wx", "Wy", "by"):
        views[name][...] = np.asarray(params[name])
    views["Wh"][0], views["bh"][0] = np.asarray(params["Wh"]), np.asarray(params["bh"])
    inputs, targets = random_chunks(spec["vocab_size"], 4, 16, seed=3)[0]
    state = (np.random.default_rng(4).standard_normal((4, spec["hidden"])) * 0.5).astype(np.float32)
    loss, grad, _ = _workspace(model).loss_and_grads(inputs, targets, state[None])
    jax_loss, jax_grads = gradients(params, inputs, targets, state)
    ours = param_views(grad, config)
    pairs = [(ours["Wx"], jax_grads["Wx"]), (ours["Wh"][0], jax_grads["Wh"]), (ours["bh"][0], jax_grads["bh"]),
             (ours["Wy"], jax_grads["Wy"]), (ours["by"], jax_grads["by"])]  # fmt: skip
    worst = max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) for a, b in pairs)
    return {"loss_difference": abs(loss - jax_loss), "max_relative_gradient_difference": worst}


def main() -> None:
    spec = json.loads(sys.argv[1])
    {"charrnn": charrnn_worker, "torch": torch_worker, "jax": jax_worker}[spec["framework"]](spec)


if __name__ == "__main__":
    main()
