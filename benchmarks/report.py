"""From the workers' raw rows to the summary: FLOP counts, ratios, fractions of the limits, the targets of
issue 4, and the markdown tables bench.py prints.

FLOPs per character (one layer, H hidden units, V characters; a multiply-add counts 2):
    forward  = 2H² + 2HV       recurrence h_{t-1}·Wh, output h_t·Wy; the one-hot input Wx[x_t] is a
                               lookup (0 FLOPs)
    backward = 4H² + 4HV       dh_{t-1} = dpre_t·Whᵀ and dWh = h_{t-1}ᵀ·dpre_t; dWy = hᵀ·dlogits and
                               dh = dlogits·Wyᵀ
    training = forward + backward = 6H² + 6HV;  scoring and sampling = forward
Elementwise work (tanh, softmax, Adam) is not counted. The same "useful" FLOPs are used for PyTorch, so
its GFLOP/s are comparable although both of its variants do extra input work (see torch_model.py).
"""

from __future__ import annotations

# AMD EPYC Zen 4 (this machine): two 256-bit FMA pipes per core = 2 pipes × 8 fp32 lanes × 2 FLOPs
# = 32 FLOP/cycle, at ~3.55 GHz ≈ 113.6 GFLOP/s per core, ≈ 227 GFLOP/s for the 2 cores.
# Other machines: pass --peak-per-core (the value used is stored in the JSON).
PEAK_GFLOPS_PER_CORE = 113.6

FLOPS_FORMULA = {
    "forward_per_char": "2*H^2 + 2*H*V (one-hot input: a lookup, 0 FLOPs)",
    "backward_per_char": "4*H^2 + 4*H*V",
    "training_per_char": "6*H^2 + 6*H*V",
    "scoring_and_sampling_per_char": "2*H^2 + 2*H*V",
}


def forward_flops(hidden: int, vocab: int) -> int:
    return 2 * hidden * hidden + 2 * hidden * vocab


def training_flops(hidden: int, vocab: int) -> int:
    return 3 * forward_flops(hidden, vocab)


def _find(rows: list[dict], **match) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items()) and "chars_per_s" in r]


def _best(rows: list[dict]) -> dict | None:
    return max(rows, key=lambda r: r["chars_per_s"]) if rows else None


def summarize(rows: list[dict], peak_per_core: float) -> dict[str, list[dict]]:
    """One summary line per configuration: charrnn, the faster torch variant, ratio, GFLOP/s, % of peak,
    the BLAS bound and the fraction of it charrnn reaches."""
    out: dict[str, list[dict]] = {"train": [], "score": [], "sample": [], "score_text": []}
    configs = sorted({(r["kind"], r["hidden"], r["batch"], r["threads"]) for r in rows if r.get("kind") in out})
    for kind, hidden, batch, threads in configs:
        where = {"hidden": hidden, "batch": batch, "threads": threads}
        ours = _best(_find(rows, framework="charrnn", kind=kind, **where))
        skipped = next(
            (
                r["skipped"]
                for r in rows
                if r.get("kind") == kind and "skipped" in r and all(r.get(k) == v for k, v in where.items())
            ),
            None,
        )
        torch = _best(_find(rows, framework="torch", kind=kind, **where))
        jax = _best(_find(rows, framework="jax", kind=kind, **where))
        vocab = (ours or torch or jax or {}).get("vocab_size", 65)
        flops = training_flops(hidden, vocab) if kind == "train" else forward_flops(hidden, vocab)
        line = {
            **where,
            "charrnn_chars_per_s": ours and ours["chars_per_s"],
            "skipped": skipped,
            "torch_chars_per_s": torch and torch["chars_per_s"],
            "torch_variant": torch and torch["variant"],
            "ratio": ours and torch and ours["chars_per_s"] / torch["chars_per_s"],
            "jax_chars_per_s": jax and jax["chars_per_s"],
            "ratio_jax": ours and jax and ours["chars_per_s"] / jax["chars_per_s"],
            "flops_per_char": flops,
        }
        if ours:
            gflops = ours["chars_per_s"] * flops / 1e9
            line.update(gflops=gflops, peak_fraction=gflops / (peak_per_core * threads))
        if torch:
            line["torch_gflops"] = torch["chars_per_s"] * flops / 1e9
        bound = _best(_find(rows, kind=f"blas_{kind}", **where))
        if bound:
            line.update(
                blas_bound_chars_per_s=bound["chars_per_s"],
                blas_fraction=ours and ours["chars_per_s"] / bound["chars_per_s"],
            )
        out[kind].append(line)
    return out


def _line(summary: dict, kind: str, **where) -> dict | None:
    return next((s for s in summary[kind] if all(s[k] == v for k, v in where.items())), None)


def _target(name: str, config: str, goal: str, measured: float | None, ok: bool | None) -> dict:
    return {"name": name, "config": config, "target": goal, "measured": measured, "pass": ok}


def _ratio_target(summary: dict, kind: str, name: str, hidden: int, goal: float, threads: int,
                  field: str = "ratio") -> dict:  # fmt: skip
    """A charrnn/peer ratio target at B=64, T=64 (field "ratio": PyTorch, "ratio_jax": JAX)."""
    s = _line(summary, kind, hidden=hidden, batch=64, threads=threads)
    ratio = s and s.get(field)
    return _target(f"{name}, H={hidden}", f"B=64 T=64 threads={threads}", f">= {goal}x", ratio,
                   None if ratio is None else ratio >= goal)  # fmt: skip


def targets(summary: dict, startup: dict | None, memory: dict | None, threads: int) -> list[dict]:
    """Issue 4's targets with the measured values (None and pass None where not measured in this run)."""
    result = []
    for hidden, goal in ((128, 2.0), (256, 2.0), (512, 1.3)):
        result.append(_ratio_target(summary, "train", "training vs PyTorch", hidden, goal, threads))
    s = _line(summary, "sample", hidden=256, batch=1, threads=threads)
    ratio, rate = s and s["ratio"], s and s["charrnn_chars_per_s"]
    config = f"B=1 H=256 threads={threads}"
    result.append(
        _target("sampling vs PyTorch eager loop", config, ">= 15x", ratio, None if ratio is None else ratio >= 15)
    )
    result.append(_target("sampling chars/s", config, ">= 150000", rate, None if rate is None else rate >= 150_000))
    for hidden in (128, 256, 512):
        result.append(_ratio_target(summary, "score", "scoring vs PyTorch forward", hidden, 1.8, threads))
    for hidden in (128, 256, 512):  # issue 19: against JAX (jit, lax.scan), the strongest CPU peer
        result.append(_ratio_target(summary, "train", "training vs JAX", hidden, 1.5, threads, "ratio_jax"))
    s = _line(summary, "sample", hidden=256, batch=1, threads=threads)
    ratio = s and s.get("ratio_jax")
    result.append(_target("sampling vs JAX lax.scan loop", f"B=1 H=256 threads={threads}", ">= 2x", ratio,
                          None if ratio is None else ratio >= 2))  # fmt: skip
    warm = startup and startup.get("sample_warm_s")
    result.append(
        _target(
            "second (cached) `charrnn sample -n 100`",
            "H=256, wall time",
            "<= 1.5 s",
            warm,
            None if warm is None else warm <= 1.5,
        )
    )
    rss = memory and memory.get("peak_rss_bytes")
    limit = memory and memory["corpus_bytes"] + 300e6
    result.append(
        _target(
            "training peak RSS",
            memory and f"corpus {memory['corpus_bytes'] / 1e6:.0f} MB, H=256",
            "<= corpus + 300 MB",
            rss,
            None if rss is None else rss <= limit,
        )
    )
    return result


# ---- markdown ----


def _num(value, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{suffix}"


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _table(header: list[str], lines: list[list[str]]) -> str:
    rows = [header, ["---"] * len(header), *lines]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)


def markdown(summary: dict, startup: dict | None, memory: dict | None, target_list: list[dict]) -> str:
    parts = []
    for kind, title in (
        ("train", "Training (forward + BPTT + clip + Adam), chars/s, T=64"),
        ("score", "Scoring (forward, loss at every position), chars/s, T=64"),
    ):
        if not summary[kind]:
            continue
        lines = [
            [
                str(s["hidden"]),
                str(s["batch"]),
                str(s["threads"]),
                _num(s["charrnn_chars_per_s"]),
                _num(s["torch_chars_per_s"]) + (f" ({s['torch_variant']})" if s["torch_variant"] else ""),
                _num(s["ratio"], 2, "x"),
                _num(s.get("jax_chars_per_s")),
                _num(s.get("ratio_jax"), 2, "x"),
                _num(s.get("gflops"), 1),
                _pct(s.get("peak_fraction")),
                _num(s.get("blas_bound_chars_per_s")),
                _pct(s.get("blas_fraction")),
            ]
            for s in summary[kind]
        ]
        header = [
            "H",
            "B",
            "threads",
            "charrnn",
            "PyTorch (best variant)",
            "ratio",
            "JAX",
            "ratio",
            "GFLOP/s",
            "% peak",
            "BLAS bound",
            "% of bound",
        ]
        parts.append(f"### {title}\n\n{_table(header, lines)}")
    if summary["sample"]:
        lines = [
            [
                str(s["hidden"]),
                str(s["batch"]),
                str(s["threads"]),
                _num(s["charrnn_chars_per_s"]) if not s["skipped"] else "skipped",
                _num(s["torch_chars_per_s"]) + (f" ({s['torch_variant']})" if s["torch_variant"] else ""),
                _num(s["ratio"], 1, "x"),
                _num(s.get("jax_chars_per_s")),
                _num(s.get("ratio_jax"), 2, "x"),
                _num(s.get("gflops"), 1),
            ]
            for s in summary["sample"]
        ]
        header = ["H", "streams", "threads", "charrnn sample()", "PyTorch eager loop", "ratio", "JAX lax.scan",
                  "ratio", "GFLOP/s"]  # fmt: skip
        notes = sorted({s["skipped"] for s in summary["sample"] if s["skipped"]})
        parts.append(
            "### Sampling, chars/s (all streams together)\n\n"
            + _table(header, lines)
            + "".join(f"\n\nSkipped: {n}" for n in notes)
        )
    if summary["score_text"]:
        lines = [
            [str(s["hidden"]), str(s["threads"]), _num(s["charrnn_chars_per_s"]) if not s["skipped"] else "skipped"]
            for s in summary["score_text"]
        ]
        parts.append(
            "### score_text() on one long text (one stream), chars/s\n\n" + _table(["H", "threads", "charrnn"], lines)
        )
    if startup:
        lines = [
            ["python -c pass", _num(startup.get("python_bare_s"), 3, " s")],
            ["import charrnn", _num(startup.get("import_charrnn_s"), 3, " s")],
            ["import charrnn.model (numba, kernels)", _num(startup.get("import_charrnn_model_s"), 3, " s")],
            ["first `charrnn sample -n 100` (empty cache)", _num(startup.get("sample_cold_s"), 2, " s")],
            ["second `charrnn sample -n 100` (cached)", _num(startup.get("sample_warm_s"), 2, " s")],
        ]
        note = f"\n\nSkipped: {startup['sample_skipped']}" if "sample_skipped" in startup else ""
        parts.append("### Start-up (wall time of a whole process)\n\n" + _table(["what", "time"], lines) + note)
    if memory:
        parts.append("### Memory\n\n" + _memory_table(memory))
    lines = [
        [
            t["name"],
            t["config"] or "—",
            t["target"],
            _measured(t),
            {True: "pass", False: "FAIL", None: "not measured"}[t["pass"]],
        ]
        for t in target_list
    ]
    header = ["target", "configuration", "goal", "measured", "result"]
    parts.append("### Targets (issues 4 and 19)\n\n" + _table(header, lines))
    return "\n\n".join(parts) + "\n"


def _memory_table(memory: dict) -> str:
    def mb(value) -> str:
        return _num(value and value / 1e6, 0, " MB")

    lines = [
        [f"`{memory['command']}`, cached kernels", mb(memory["corpus_bytes"]), mb(memory["peak_rss_bytes"]),
         mb(memory["overhead_bytes"]), _num(memory["wall_s"], 1, " s")],
        ["the same on 1 MB, empty numba cache (compiles)", mb(1e6), mb(memory["cold_cache_1mb_peak_rss_bytes"]),
         "—", _num(memory["cold_cache_1mb_wall_s"], 1, " s")],
        ["`python -c \"import charrnn.train\"`", "—", mb(memory["peak_rss_import_only_bytes"]), "—", "—"],
    ]  # fmt: skip
    return _table(["run", "corpus", "peak RSS", "RSS - corpus", "wall"], lines)


def _measured(target: dict) -> str:
    value = target["measured"]
    if value is None:
        return "—"
    if "RSS" in target["name"]:
        return f"{value / 1e6:,.0f} MB"
    if target["target"].endswith("x"):
        return f"{value:.2f}x"
    if target["target"].endswith(" s"):
        return f"{value:.2f} s"
    return f"{value:,.0f}"
