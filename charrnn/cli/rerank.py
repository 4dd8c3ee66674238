"""`charrnn rerank MODEL [FILE|-]`: choose the most likely candidate of each n-best list."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from .common import ModelArgument, ThreadsOption, user_errors
from .options import escape

BLOCK = 4096  # lists scored per batch: output streams, memory stays flat, and batches stay full


def rerank(
    model: ModelArgument,
    source: Annotated[str, typer.Argument(help="N-best lists (JSON lines or plain text), or - for stdin.")] = "-",
    lm_weight: Annotated[
        float, typer.Option("--lm-weight", help="Weight of the model's log-probability in the combined score.")
    ] = 1.0,
    length_norm: Annotated[
        bool, typer.Option("--length-norm", help="Use the log-probability per scored character instead.")
    ] = False,
    unk_penalty: Annotated[
        float | None,
        typer.Option("--unk-penalty", metavar="BITS", show_default=False,
                     help=escape("Cost of a character the model does not know [default: the surprisal of the "
                                 "least likely known character in that context].")),
    ] = None,  # fmt: skip
    fmt: Annotated[str, typer.Option("--format", help="Input format: auto, jsonl or text.")] = "auto",
    allow_single: Annotated[
        bool, typer.Option("--allow-single", help="Accept lists of one candidate (chosen as they are).")
    ] = False,
    keep_going: Annotated[
        bool,
        typer.Option("--keep-going", help="A bad list gets an error record (--json) or an empty line in its place; "
                                          "the rest is ranked, and the exit status is 1 at the end."),
    ] = False,  # fmt: skip
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per list: every candidate's log-probability, rank.")
    ] = False,
    threads: ThreadsOption = 0,
) -> None:
    """Choose the most likely candidate of each n-best list: lm_weight x ln p(candidate) + the recogniser's
    score. Each candidate is scored as a line of its own, its end included. Prints the chosen candidates,
    one per line (or --json records)."""
    from ..errors import CharrnnError
    from ..generate import compute_threads
    from ..model import load_model
    from ..nbest import BadList, NBest, parse_nbest, read_input
    from ..rerank import rerank as rank_lists

    with user_errors():
        text, name = read_input(source)
        items = parse_nbest(text, name, fmt, allow_single, keep_going)
        loaded = load_model(model)
        bad = [item for item in items if isinstance(item, BadList)]
        with compute_threads(threads):
            for start in range(0, len(items), BLOCK):
                block = items[start : start + BLOCK]
                ranked = iter(rank_lists(loaded, [i for i in block if isinstance(i, NBest)], lm_weight, length_norm,
                                         unk_penalty))  # fmt: skip
                lines = []
                for item in block:
                    if isinstance(item, BadList):
                        lines.append(json.dumps({"id": item.id, "list": item.number, "line": item.line,
                                                 "error": item.error}) if as_json else "")  # fmt: skip
                    else:
                        ranking = next(ranked)
                        lines.append(json.dumps(ranking.record(), ensure_ascii=False) if as_json else ranking.text)
                sys.stdout.write("\n".join(lines) + "\n")
                sys.stdout.flush()
        if bad:
            first = bad[0]
            raise CharrnnError(f"{len(bad)} of {len(items)} lists were not ranked (first: {name} line {first.line}: "
                               f"{first.error})")  # fmt: skip
