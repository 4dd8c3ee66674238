"""Records and their human-readable rendering: what the commands print, built once.

Each command's result is a plain record (a JSON-able dict) built here from the library's result objects;
`--json` prints the record and the text output is rendered from the same record by the `*_text` functions,
so the two can never disagree. Nothing here computes a score or touches a model's weights.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .vocab import describe_char

LN2 = math.log(2.0)


def _bits(nats: float | None) -> float | None:
    return None if nats is None else nats / LN2


# ---- train ----


def train_record(result: Any, max_rollbacks: int) -> dict[str, Any]:
    """The final summary of a training run (`train.TrainResult`)."""
    state = result.state
    return {
        "stop_reason": result.stop_reason,
        "steps": state.step,
        "epoch": state.epoch,
        "elapsed_seconds": state.elapsed,
        "chars_per_second": result.chars_per_second,
        "output": str(result.output),
        "best_output": str(result.best_output) if state.best_val_loss is not None else None,
        "best_val_loss_nats": state.best_val_loss,
        "best_val_bits_per_char": _bits(state.best_val_loss),
        "last_train_loss_nats": result.last_train_loss,
        "last_val_loss_nats": result.last_val_loss,
        "rollbacks": result.rollbacks,
        "max_rollbacks": max_rollbacks,
    }


def train_text(record: dict[str, Any]) -> str:
    """One line: why and where training stopped, where it was saved."""
    best = record["best_val_loss_nats"]
    best_text = f", best validation {best:.4f} nats/char in {record['best_output']}" if best is not None else ""
    if record["stop_reason"] == "diverged":
        return (f"training diverged {record['max_rollbacks']} times in a row even after halving the learning rate "
                f"each time; kept the last good model (step {record['steps']}) in {record['output']}"
                + best_text)  # fmt: skip
    return (f"stopped ({record['stop_reason']}) at step {record['steps']}, {record['chars_per_second']:,.0f} "
            f"chars/s; saved {record['output']}" + best_text)  # fmt: skip


# ---- info ----


def info_text(details: dict[str, Any]) -> str:
    """The `charrnn info` table from `model.checkpoint_info`'s record."""
    config = details["config"]
    lines = [
        f"{details['path']}: {config['num_layers']} x {config['hidden_size']} {config['activation']} "
        f"Elman RNN, {config['dtype']}, format v{details['format_version']}",
        f"{'tensor':<8}{'shape':<18}{'parameters':>12}",
    ]
    for row in details["parameters"]:
        lines.append(f"{row['name']:<8}{str(tuple(row['shape'])):<18}{row['count']:>12,}")
    lines.append(f"{'total':<26}{details['total_parameters']:>12,}")
    lines.append(f"vocabulary: {details['vocab_size']} characters {details['vocab']!r}")
    best = details["best_val_loss_nats"]
    lines.append(f"trained: {details['steps']} steps, epoch {details['epoch']}; best validation: "
                 + (f"{best:.4f} nats/char ({details['best_val_loss_bits']:.4f} bits/char)" if best is not None
                    else "none"))  # fmt: skip
    return "\n".join(lines)


# ---- score ----


def score_record(name: str, model: str, result: Any, rows: list[dict] | None, lines: list[Any] | None,
                 baselines: dict[int, float] | None = None) -> dict[str, Any]:  # fmt: skip
    """`charrnn score`'s record: the totals of a `score.ScoreResult`, the n-gram baselines (order -> nats/char)
    when fitted, and optionally per-char rows and per-line scores (`score.LineScore`)."""
    out = {"source": name, "model": model, **result.summary()}
    out["unknown"]["first_positions"] = {c: first for c, (_, first) in result.unknown.counts.items()}
    if baselines is not None:
        out["baselines_nats_per_char"] = baselines
    if rows is not None:
        out["per_char"] = rows
    if lines is not None:
        out["lines"] = [{"line": ln.line, "text": ln.text, "scored": ln.scored,
                         "log_likelihood_nats": ln.log_likelihood,
                         "bits_per_char": ln.bits_per_char if ln.scored else None} for ln in lines]  # fmt: skip
    return out


def score_text(record: dict[str, Any], baseline: str | None = None) -> str:
    """Per-char and per-line tables (when present), the totals, baselines and unknown characters."""
    out = []
    if "per_char" in record:
        out.append(f"{'position':>8}  {'char':<8}{'prob':>9}{'bits':>8}  most likely")
        for row in record["per_char"]:
            alts = "  ".join(f"{describe_char(a['char'])} {a['prob']:.3f}" for a in row["alternatives"])
            out.append(f"{row['position']:>8}  {describe_char(row['char']):<8}{row['prob']:>9.4f}"
                       f"{row['bits']:>8.2f}  {alts}")  # fmt: skip
    if "lines" in record:
        out.append(f"{'line':>6}{'chars':>7}{'bits/char':>11}  text")
        for ln in record["lines"]:
            bpc = f"{ln['bits_per_char']:.3f}" if ln["scored"] else "-"
            out.append(f"{ln['line']:>6}{ln['scored']:>7}{bpc:>11}  {ln['text'][:60]}")
    out.append(f"{record['source']}: {record['characters']:,} characters, {record['scored']:,} scored (the first only "
               f"conditions)\nlog-likelihood {record['log_likelihood_nats']:.2f} nats "
               f"({record['log_likelihood_bits']:.2f} bits)\n{record['nats_per_char']:.4f} nats/char, "
               f"{record['bits_per_char']:.4f} bits/char, perplexity {record['perplexity']:.3f}")  # fmt: skip
    for order, nats in record.get("baselines_nats_per_char", {}).items():
        out.append(f"  {order}-gram baseline (Kneser-Ney, fitted on {baseline}): {nats:.4f} nats/char, "
                   f"{nats / LN2:.4f} bits/char")  # fmt: skip
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


def attribution_text(report: dict[str, Any]) -> str:
    """Paragraph verdicts (when present), the per-model table and the verdict, from `Attribution.to_dict`."""
    names = list(report["models"])
    width = max(12, *(len(n) for n in names))
    out = []
    if "paragraphs" in report:
        out.append(f"{'para':>5}{'line':>7}{'chars':>7}  {'best':<{width}}{'margin bits':>12}  text")
        for para in report["paragraphs"]:
            if para["best"] is None:
                out.append(f"{para['index'] + 1:>5}{para['line']:>7}{para['scored']:>7}  {'(too short)':<{width}}")
                continue
            preview = para["preview"].replace("\n", " ")[:50]
            out.append(f"{para['index'] + 1:>5}{para['line']:>7}{para['scored']:>7}  {para['best']:<{width}}"
                       f"{para['margin_bits']:>12.1f}  {preview}")  # fmt: skip
        wins = {n: sum(p["best"] == n for p in report["paragraphs"]) for n in names}
        out.append("paragraphs won: " + ", ".join(f"{n} {c}" for n, c in wins.items()) + "\n")
    out.append(f"{'model':<{width}}{'bits/char':>11}{'log-lik (nats)':>17}{'posterior':>12}")
    for label, row in report["models"].items():
        out.append(f"{label:<{width}}{row['bits_per_char']:>11.4f}{row['log_likelihood_nats']:>17.1f}"
                   f"{row['posterior']:>12.4g}")  # fmt: skip
    excluded = ", ".join(f"{describe_char(c)} x{n}" for c, n in sorted(report["excluded"].items()))
    out.append(f"verdict: {report['best']} ({report['scored']:,} characters scored"
               + (f"; excluded as unknown to some model: {excluded})" if excluded else ")"))  # fmt: skip
    return "\n".join(out)


# ---- corpora ----


def corpus_list_record(corpora: list[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(corpus) for corpus in corpora]


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
        checksum = "built-in" if corpus["builtin"] else "pinned" if corpus["sha256"] else "recorded on 1st get"
        size = "built-in" if corpus["builtin"] else _human_size(corpus["size"])
        rows.append((corpus["name"], size, checksum, corpus["license"]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
                     for row in rows)  # fmt: skip


def synth_record(result: Any, output: str) -> dict[str, Any]:
    """A synthetic text's record (`synth.SynthText`) once written to `output`."""
    return {"source": result.source, "output": output, "length": len(result.text), **result.params,
            "entropy_rate_bits_per_char": result.entropy_rate}  # fmt: skip


def synth_text(record: dict[str, Any]) -> str:
    return (f"wrote {record['length']:,} characters to {record['output']}\n"
            f"entropy rate: {record['entropy_rate_bits_per_char']:.6f} bits/char")  # fmt: skip


# ---- sample ----


def sample_record(result: Any, prime: str, seed: int) -> dict[str, Any]:
    """One JSON line of `charrnn sample --json` (a `generate.SampleResult`)."""
    return {**result.to_dict(), "prime": prime, "seed": seed}
