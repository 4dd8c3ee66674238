"""Records and their human-readable rendering: what the commands print, built once.

Each command's result is a plain record (a JSON-able dict with a "kind", see docs/json.md) built here
from the library's result objects. `--json` prints the records one per line; the text output is
rendered from the same records by the `*_text` functions, so the two never disagree. Records that
stream (score's per-character and per-line rows, attribution paragraphs, samples, metrics) are yielded
one at a time. Nothing here computes a score or touches a model's weights.

Field names (docs/json.md): a rate is `<what>_nats_per_char` / `<what>_bits_per_char` (plain
`bits_per_char` for the text at hand), a total is `log_likelihood_nats` / `log_likelihood_bits`, a
duration `<what>_seconds`, a size `size_bytes`.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .provenance import PROVENANCE_KEYS
from .vocab import describe_char

LN2 = math.log(2.0)


def bits(nats: float | None) -> float | None:
    return None if nats is None else nats / LN2


# ---- train and info ----


def train_record(result: Any, max_rollbacks: int) -> dict[str, Any]:
    """The final summary of a training run (`train.TrainResult`)."""
    state = result.state
    return {
        "kind": "train",
        "stop_reason": result.stop_reason,
        "steps": state.step,
        "epoch": state.epoch,
        "elapsed_seconds": state.elapsed,
        "chars_per_second": result.chars_per_second,
        "output": str(result.output),
        "best_output": str(result.best_output) if state.best_val_loss is not None else None,
        "best_val_nats_per_char": state.best_val_loss,
        "best_val_bits_per_char": bits(state.best_val_loss),
        "last_train_nats_per_char": result.last_train_loss,
        "last_val_nats_per_char": result.last_val_loss,
        "rollbacks": result.rollbacks,
        "max_rollbacks": max_rollbacks,
    }


def train_text(record: dict[str, Any]) -> str:
    """One line: why and where training stopped, where it was saved."""
    best = record["best_val_nats_per_char"]
    best_text = f", best validation {best:.4f} nats/char in {record['best_output']}" if best is not None else ""
    if record["stop_reason"] == "diverged":
        return (f"training diverged {record['max_rollbacks']} times in a row even after halving the learning rate "
                f"each time; kept the last good model (step {record['steps']}) in {record['output']}"
                + best_text)  # fmt: skip
    return (f"stopped ({record['stop_reason']}) at step {record['steps']}, {record['chars_per_second']:,.0f} "
            f"chars/s; saved {record['output']}" + best_text)  # fmt: skip


def info_record(path: str | Path) -> dict[str, Any]:
    """What `charrnn info` shows: architecture, parameters per tensor, vocabulary, training progress and
    the options the checkpoint was trained with."""
    from .model import load_checkpoint

    model, meta, _ = load_checkpoint(path)
    best = meta.get("best_val_loss")
    return {
        "kind": "info",
        "path": str(path),
        "format_version": meta["version"],
        "role": meta.get("role"),
        "config": dataclasses.asdict(model.config),
        "parameters": [{"name": n, "shape": list(s), "count": c} for n, s, c in model.summary()],
        "total_parameters": int(model.flat.size),
        "vocab_size": len(model.vocab),
        "vocab": model.vocab.chars,
        "end_symbol": model.vocab.has_end,
        "documents": meta.get("documents"),
        "steps": meta.get("step", 0),
        "epoch": meta.get("epoch", 0),
        "elapsed_seconds": meta.get("elapsed"),
        "best_val_nats_per_char": best,
        "best_val_bits_per_char": bits(best),
        "train_config": meta.get("train_config"),
        "data_config": meta.get("data_config"),
        **{key: meta.get(key) for key in PROVENANCE_KEYS},
    }


def info_text(details: dict[str, Any]) -> str:
    """The `charrnn info` table."""
    config = details["config"]
    lines = [
        f"{details['path']}: {config['num_layers']} x {config['hidden_size']} {config['activation']} "
        f"Elman RNN, {config['dtype']}, format v{details['format_version']}",
        f"{'tensor':<8}{'shape':<18}{'parameters':>12}",
    ]
    for row in details["parameters"]:
        lines.append(f"{row['name']:<8}{str(tuple(row['shape'])):<18}{row['count']:>12,}")
    lines.append(f"{'total':<26}{details['total_parameters']:>12,}")
    lines.append(f"vocabulary: {len(details['vocab'])} characters {details['vocab']!r}"
                 + (" + the end-of-document symbol" if details.get("end_symbol") else ""))  # fmt: skip
    if details.get("documents"):
        d = details["documents"]
        lines.append(f"documents: split by {d['split']!r}, {d['train_documents']:,} training and "
                     f"{d['validation_documents']:,} validation documents, longest {d['longest']} chars")  # fmt: skip
    best = details["best_val_nats_per_char"]
    elapsed = details["elapsed_seconds"]
    lines.append(f"trained: {details['steps']} steps, epoch {details['epoch']}"
                 + (f", {_duration(elapsed)}" if elapsed else "") + "; best validation: "
                 + (f"{best:.4f} nats/char ({details['best_val_bits_per_char']:.4f} bits/char)" if best is not None
                    else "none"))  # fmt: skip
    if details["role"]:
        lines.append(f"role: {details['role']}" + (" (resume with --resume)" if details["role"] == "latest" else ""))
    lines += _card_lines(details)
    for key, title in (("train_config", "training options"), ("data_config", "data options")):
        if details.get(key):
            lines += textwrap.wrap(f"{title}: {_as_options(key, details[key])}", 110, subsequent_indent="  ",
                                   break_on_hyphens=False)  # fmt: skip
    return "\n".join(lines)


def _as_options(key: str, values: dict[str, Any]) -> str:
    """Recorded options as the command line spells them (`--lr 0.002`); library-only ones as name=value."""
    from .config import STORED, option_specs

    specs = option_specs(STORED[key])
    words = []
    for name, value in values.items():
        spec = specs.get(name)
        if spec is not None and spec.flag:
            words.append(f"{spec.flag} {'-' if value is None else value}")
        else:
            words.append(f"{name}={value}")
    return " ".join(words)


def _card_lines(details: dict[str, Any]) -> list[str]:
    """The provenance part of `info` (charrnn/provenance.py); checkpoints older than it have none."""
    lines = []
    if details.get("description"):
        lines.append(f"description: {details['description']}")
    if details.get("created_at"):
        lines.append(f"created: {details['created_at']} by charrnn {details.get('charrnn_version') or '?'}")
    if details.get("fine_tuned_from"):
        lines.append(f"fine-tuned from: {details['fine_tuned_from']}")
    for index, command in enumerate(details.get("commands") or []):
        lines.append(("command: " if index == 0 else "resumed: ") + command)
    for corpus in details.get("corpora") or []:
        stored = f", {corpus['compression']}" if corpus.get("compression") else ""
        known = f", {corpus['size_bytes']:,} bytes{stored}, sha256 {corpus['sha256'][:16]}…" if corpus["sha256"] else ""
        lines.append(f"corpus ({corpus['role']}): {corpus['path']}{known}")
    return lines


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


# ---- score ----


def char_records(chunk: Any, chars: str) -> Iterator[dict[str, Any]]:
    """One record per scored character of a `stream.ScoredChunk` (`chars`: the model's vocabulary): its
    1-based position in the text as scored, its probability, its surprisal in bits, and the most likely
    alternatives (as many as `top` was when scoring). Yielded one by one: a long text never sits in
    memory as rows."""
    top_ids, top_log_probs = chunk.top_ids.tolist(), chunk.top_log_probs.tolist()
    for i, log_p in enumerate(chunk.log_probs.tolist()):
        yield {"kind": "char", "position": chunk.position + i, "char": chars[chunk.ids[i]], "prob": math.exp(log_p),
               "surprisal_bits": -log_p / LN2,
               "alternatives": [{"char": chars[c], "prob": math.exp(lp)}
                                for c, lp in zip(top_ids[i], top_log_probs[i], strict=True)]}  # fmt: skip


def line_records(lines: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """One record per line of the text (`score.LineScore`)."""
    for ln in lines:
        yield {"kind": "line", "line": ln.line, "text": ln.text, "scored": ln.scored,
               "log_likelihood_nats": ln.log_likelihood,
               "bits_per_char": ln.bits_per_char if ln.scored else None}  # fmt: skip


def score_record(name: str, model: str, result: Any, baselines: dict[int, float] | None = None) -> dict[str, Any]:
    """`charrnn score`'s summary: the totals of a `score.ScoreResult` (or anything with its `summary()`
    and `unknown`) and, when fitted, the n-gram baselines (order -> nats/char)."""
    summary = result.summary()
    summary["unknown"]["first_positions"] = {c: first for c, (_, first) in result.unknown.counts.items()}
    out = {"kind": "score", "source": name, "model": model, **summary}
    if baselines is not None:
        out["baselines"] = [{"order": order, "nats_per_char": nats, "bits_per_char": nats / LN2}
                            for order, nats in baselines.items()]  # fmt: skip
    return out


def char_header() -> str:
    return f"{'position':>8}  {'char':<8}{'prob':>9}{'bits':>8}  most likely"


def char_text(row: dict[str, Any]) -> str:
    alts = "  ".join(f"{describe_char(a['char'])} {a['prob']:.3f}" for a in row["alternatives"])
    return (f"{row['position']:>8}  {describe_char(row['char']):<8}{row['prob']:>9.4f}"
            f"{row['surprisal_bits']:>8.2f}  {alts}")  # fmt: skip


def line_header() -> str:
    return f"{'line':>6}{'chars':>7}{'bits/char':>11}  text"


def line_text(row: dict[str, Any]) -> str:
    bpc = f"{row['bits_per_char']:.3f}" if row["scored"] else "-"
    return f"{row['line']:>6}{row['scored']:>7}{bpc:>11}  {row['text'][:60]}"


def score_text(record: dict[str, Any], baseline: str | None = None) -> str:
    """The totals, baselines and unknown characters."""
    out = [f"{record['source']}: {record['characters']:,} characters, {record['scored']:,} scored (the first only "
           f"conditions)\nlog-likelihood {record['log_likelihood_nats']:.2f} nats "
           f"({record['log_likelihood_bits']:.2f} bits)\n{record['nats_per_char']:.4f} nats/char, "
           f"{record['bits_per_char']:.4f} bits/char, perplexity {record['perplexity']:.3f}"]  # fmt: skip
    for row in record.get("baselines", []):
        out.append(f"  {row['order']}-gram baseline (Kneser-Ney, fitted on {baseline}): {row['nats_per_char']:.4f} "
                   f"nats/char, {row['bits_per_char']:.4f} bits/char")  # fmt: skip
    unknown = record["unknown"]
    if unknown["total"]:
        policy = unknown["policy"]
        action = {"skip": "skipped"}.get(policy, f"mapped to {describe_char(policy)}")
        first = unknown["first_positions"]
        counts = ", ".join(f"{describe_char(c)} x{n} (first at {first[c]})"
                           for c, n in sorted(unknown["characters"].items(), key=lambda item: first[item[0]]))
        out.append(f"unknown characters {action}: {counts}")
    return "\n".join(out)


# ---- attribute ----


def attribution_records(source: str, result: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(paragraph records, summary record) of a `score.Attribution`."""
    summary = {"kind": "attribution", "source": source, **result.to_dict()}
    paragraphs = [{"kind": "paragraph", **para} for para in summary.pop("paragraphs", [])]
    return paragraphs, summary


def attribution_text(summary: dict[str, Any], paragraphs: list[dict[str, Any]]) -> str:
    """Paragraph verdicts (when given), the per-model table and the verdict."""
    names = list(summary["models"])
    width = max(12, *(len(n) for n in names))
    out = []
    if paragraphs:
        out.append(f"{'para':>5}{'line':>7}{'chars':>7}  {'best':<{width}}{'margin bits':>12}  text")
        for para in paragraphs:
            if para["best"] is None:
                out.append(f"{para['index'] + 1:>5}{para['line']:>7}{para['scored']:>7}  {'(too short)':<{width}}")
                continue
            preview = para["preview"].replace("\n", " ")[:50]
            out.append(f"{para['index'] + 1:>5}{para['line']:>7}{para['scored']:>7}  {para['best']:<{width}}"
                       f"{para['margin_bits']:>12.1f}  {preview}")  # fmt: skip
        wins = {n: sum(p["best"] == n for p in paragraphs) for n in names}
        out.append("paragraphs won: " + ", ".join(f"{n} {c}" for n, c in wins.items()) + "\n")
    out.append(f"{'model':<{width}}{'bits/char':>11}{'log-lik (nats)':>17}{'posterior':>12}")
    for label, row in summary["models"].items():
        out.append(f"{label:<{width}}{row['bits_per_char']:>11.4f}{row['log_likelihood_nats']:>17.1f}"
                   f"{row['posterior']:>12.4g}")  # fmt: skip
    excluded = ", ".join(f"{describe_char(c)} x{n}" for c, n in sorted(summary["excluded"].items()))
    out.append(f"verdict: {summary['best']} ({summary['scored']:,} characters scored"
               + (f"; excluded as unknown to some model: {excluded})" if excluded else ")"))  # fmt: skip
    return "\n".join(out)


# ---- sample ----


def sample_record(result: Any, prime: str, seed: int) -> dict[str, Any]:
    """One sample (`generate.SampleResult`): log-likelihoods in nats, under the model itself and under the
    distribution actually sampled from (temperature, top-k, top-p)."""
    return {"kind": "sample", "sample": result.index, "text": result.text, "prime": prime, "seed": seed,
            "length": result.length, "stopped": result.stopped, "log_likelihood_nats": result.log_prob_model,
            "bits_per_char": -result.log_prob_model / result.length / LN2 if result.length else None,
            "sampling_log_likelihood_nats": result.log_prob_sampling}  # fmt: skip


# ---- corpora ----


def corpus_record(corpus: Any, path: Path | None = None) -> dict[str, Any]:
    """A registry entry (`corpora.Corpus`); with `path`, the text file `corpus get` made ready."""
    fields = dataclasses.asdict(corpus)
    fields["download_size_bytes"] = fields.pop("size")
    fields["download_sha256"] = fields.pop("sha256")
    out = {"kind": "corpus", **fields}
    if path is not None:
        out["path"] = str(path)
        out["size_bytes"] = path.stat().st_size
    return out


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return "?"


def corpus_list_text(records: list[dict[str, Any]]) -> str:
    """NAME, SIZE, SHA256 status and LICENSE columns."""
    rows = [("NAME", "SIZE", "SHA256", "LICENSE")]
    for corpus in records:
        builtin = corpus["builtin"]
        checksum = "built-in" if builtin else "pinned" if corpus["download_sha256"] else "recorded on 1st get"
        size = "built-in" if builtin else _human_size(corpus["download_size_bytes"])
        rows.append((corpus["name"], size, checksum, corpus["license"]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
                     for row in rows)  # fmt: skip


def synth_record(result: Any, output: str) -> dict[str, Any]:
    """A synthetic text's record (`synth.SynthText`) once written to `output`."""
    return {"kind": "synth", "source": result.source, "output": output, "length": len(result.text), **result.params,
            "entropy_rate_bits_per_char": result.entropy_rate}  # fmt: skip


def synth_text(record: dict[str, Any]) -> str:
    return (f"wrote {record['length']:,} characters to {record['output']}\n"
            f"entropy rate: {record['entropy_rate_bits_per_char']:.6f} bits/char")  # fmt: skip
