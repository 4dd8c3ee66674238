"""Command-line side of charrnn.distributed: the `sweep` command, and the many-documents mode of `score` and
`attribute` (`--engine local|dask[=SCHEDULER_ADDRESS]`), called from cli.py.

No maths and no Dask here: options are parsed, one library call is made (runner.run_documents,
sweep.run_sweep), and its result is printed. Results go to a JSON-lines file (-o) or to stdout; a summary
line and the progress bar (on a terminal) to stderr. Importing this module is cheap: cli.py imports it for
the option declarations, so `charrnn --help` stays fast.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import CharrnnError

EngineOption = Annotated[
    str | None,
    typer.Option("--engine", help="Many documents: local (this process) or dask[=SCHEDULER_ADDRESS] (a local "
                 "cluster, or an existing one); writes one JSON line per document.", show_default=False),
]  # fmt: skip
WorkersOption = Annotated[
    int | None, typer.Option("--workers", help="Worker processes of the local Dask cluster [default: one per core].")
]
BatchOutputOption = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="With --engine: write the JSON lines to this file (default: stdout)."),
]
ResumeOutputOption = Annotated[
    bool, typer.Option("--resume-output", help="Continue an existing --output: skip the ids (trials) already in it.")
]
TaskCharsOption = Annotated[
    int | None,
    typer.Option("--task-chars", help="With --engine: characters per task [default: ~1 s of work for the model]."),
]


def single_source(sources: list[str] | None) -> str | None:
    """The one FILE (or -) of the single-text commands."""
    if sources and len(sources) > 1:
        raise CharrnnError("give one FILE (or -); for many documents add --engine local or --engine dask")
    return sources[0] if sources else None


def check_batch_options(engine: str | None, classic: dict[str, bool], batch: dict[str, bool]) -> bool:
    """Whether the many-documents mode is asked for, refusing options of the other mode in one line."""
    if engine is None:
        used = [name for name, given in batch.items() if given]
        if used:
            raise CharrnnError(f"{', '.join(used)} only appl{'ies' if len(used) == 1 else 'y'} with --engine "
                               "(many documents)")  # fmt: skip
        return False
    used = [name for name, given in classic.items() if given]
    if used:
        verb = "does" if len(used) == 1 else "do"
        raise CharrnnError(f"{', '.join(used)} {verb} not apply with --engine (one JSON line per document)")
    return True


def _run(kind: str, paths: list[Path], names: list[str], sources: list[str], options: dict, engine: str,
         workers: int | None, output: Path | None, resume: bool, task_chars: int | None,
         threads: int) -> None:  # fmt: skip
    from ..distributed import JobSpec, make_engine, prepare_models, run_documents
    from ..distributed.runner import preflight

    if not sources:
        raise CharrnnError("give the documents: files, directories or JSON-lines files")
    if "-" in sources:
        raise CharrnnError("--engine reads files, directories and JSON-lines files, not stdin (-)")
    refs, models = prepare_models(paths, names)
    spec = JobSpec(kind, tuple(refs), options)
    scan = preflight(spec, sources, output, resume)
    with make_engine(engine, workers, threads) as runner:
        typer.echo(f"{kind}: {scan.documents:,} documents on {runner.describe()}", err=True)
        summary = run_documents(spec, sources, runner, output, resume, progress=sys.stderr.isatty(),
                                task_chars=task_chars, shipped=models, scan=scan)  # fmt: skip
    rate = summary.written / summary.seconds if summary.seconds > 0 else math.inf
    skipped = f", {summary.skipped:,} already in {output}" if summary.skipped else ""
    typer.echo(f"{kind}: {summary.written:,} of {summary.documents:,} documents written ({summary.failed:,} failed"
               f"{skipped}) in {summary.seconds:.1f} s, {rate:,.1f} documents/s, {summary.tasks} tasks",
               err=True)  # fmt: skip


def batch_score(model: Path, sources: list[str], unk: str, engine: str, workers: int | None, output: Path | None,
                resume: bool, task_chars: int | None, threads: int) -> None:  # fmt: skip
    """`charrnn score MODEL DOCS... --engine ...`: the totals of `score --json` per document."""
    from ..vocab import parse_unk_option

    _run("score", [model], [model.stem], sources, {"unk": parse_unk_option(unk)}, engine, workers, output, resume,
         task_chars, threads)  # fmt: skip


def batch_attribute(models: list[Path], names: list[str], sources: list[str], by_paragraph: bool, engine: str,
                    workers: int | None, output: Path | None, resume: bool, task_chars: int | None,
                    threads: int) -> None:  # fmt: skip
    """`charrnn attribute DOCS... -m A -m B --engine ...`: `attribute --json` per document."""
    _run("attribute", models, names, sources, {"by_paragraph": by_paragraph}, engine, workers, output, resume,
         task_chars, threads)  # fmt: skip


def train_options() -> dict[str, tuple[str, bool]]:
    """`charrnn train`'s options: name (dashes as underscores) -> (the option as written, is it a flag)."""
    import typer.main

    from ..cli import app

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    out = {}
    for param in command.params:
        if param.param_type_name == "option":
            for opt in param.opts:
                if opt.startswith("--"):
                    out[opt[2:].replace("-", "_")] = (opt, bool(param.is_flag))
    return out


def sweep(
    config: Annotated[
        Path, typer.Argument(help="Sweep file (TOML): corpus, [train] options, [grid] or [random].", show_default=False)
    ],
    engine: Annotated[
        str,
        typer.Option(
            "--engine", help="local (trials one after another) or dask[=SCHEDULER_ADDRESS] (one trial per worker)."
        ),
    ] = "local",
    workers: WorkersOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Directory of the trials and results [default: the file's `output`, else <stem>-sweep beside it].",
        ),
    ] = None,
    resume_output: ResumeOutputOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Grid or random search over `charrnn train` options: each trial a training run, results in one table
    and JSON, the best model kept as best.npz. Diverging trials are reported, not fatal."""  # fmt: skip
    from ..distributed import make_engine
    from ..distributed.sweep import load_sweep, run_sweep
    from .common import user_errors

    with user_errors():
        allowed = train_options()
        plan = load_sweep(config, allowed, output)
        with make_engine(engine, workers) as runner:
            typer.echo(f"sweep: {len(plan.trials)} trials ({plan.search}) on {runner.describe()}; "
                       f"results in {plan.output}", err=True)  # fmt: skip
            summary = run_sweep(plan, runner, allowed, resume_output, progress=sys.stderr.isatty())
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        else:
            print_table(summary)
        if summary["best"] is None:
            statuses = ", ".join(f"{row['id']} {row['status']}" for row in summary["trials"])
            raise CharrnnError(f"no trial produced a model with a validation loss ({statuses})")


def print_table(summary: dict) -> None:
    rows = sorted(summary["trials"], key=lambda r: (r["best_val_loss_nats"] is None or r["status"] != "ok",
                                                    r["best_val_loss_nats"] or 0.0))  # fmt: skip
    typer.echo(f"{'trial':<12}{'status':<12}{'val nats':>10}{'bits/char':>10}{'steps':>8}{'seconds':>9}  options")
    for row in rows:
        loss = row["best_val_loss_nats"]
        nats, bits = (f"{loss:.4f}", f"{row['best_val_bits_per_char']:.4f}") if loss is not None else ("-", "-")
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["params"].items())
        typer.echo(f"{row['id']:<12}{row['status']:<12}{nats:>10}{bits:>10}{row['steps'] or 0:>8}"
                   f"{row['seconds']:>9.1f}  {params}")  # fmt: skip
        if row["status"] != "ok":
            typer.echo(f"{'':<12}  {row['error']}")
    if summary["best"] is not None:
        typer.echo(f"best: {summary['best']}, kept as {summary['best_model']}")
