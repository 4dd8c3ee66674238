"""charrnn.distributed: many documents and sweeps on one process or a Dask cluster.

One Dask LocalCluster (2 worker processes x 1 thread, bound to 127.0.0.1, no dashboard) serves the module: it is
started through `DaskEngine` (the `--engine dask` path) and the CLI tests reach it by address
(`--engine dask=tcp://127.0.0.1:PORT`, the path of an existing cluster).
"""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_models import assert_user_error, markov_text, random_model, save
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.distributed import DaskEngine, JobSpec, LocalEngine, prepare_models, run_documents
from charrnn.distributed.documents import Document, form_tasks, iter_documents
from charrnn.distributed.engine import ordered_window, parse_engine
from charrnn.errors import CharrnnError
from charrnn.score import attribute, score_text

ALPHABET = "abcdefgh \n"
TASK_CHARS = "6000"  # ~15 tasks over the documents below: several per worker, so scheduling order varies


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two models and 300+ documents: JSON lines of varied lengths, plain files, and the malformed kinds."""
    root = tmp_path_factory.mktemp("distributed")
    models = [save(random_model(ALPHABET, hidden=16, dtype="float32", seed=s), root / f"m{s}.npz") for s in (1, 2)]
    docs = root / "docs"
    docs.mkdir()
    rng = np.random.default_rng(0)
    with open(docs / "a.jsonl", "w", encoding="utf-8") as handle:
        for i in range(300):
            text = markov_text(int(rng.integers(20, 400)), ALPHABET, chain_seed=i % 3, sample_seed=i)
            handle.write(json.dumps({"id": f"doc-{i:03d}", "text": text}) + "\n")
        handle.write("{not json\n")  # malformed line
        handle.write(json.dumps({"id": "no-text"}) + "\n")
        handle.write(json.dumps({"id": 7, "text": "abc XYZ"}) + "\n")  # characters the model does not know
        handle.write(json.dumps({"id": "one-char", "text": "a"}) + "\n")
    (docs / "bad.txt").write_bytes(b"abc de\xff gh")  # bad encoding
    (docs / "crlf.txt").write_bytes(b"ab cd\r\nef gh\r\n")
    (docs / "para.txt").write_text("abc def gh\n\nhhh ggg\nfed\n\na\n\nbad cafe\n", encoding="utf-8")
    return {"root": root, "models": models, "docs": docs, "count": 300 + 4 + 3}


@pytest.fixture(scope="module")
def engine():
    """The module's cluster, started as `--engine dask --workers 2` starts one."""
    with DaskEngine(workers=2) as started:
        yield started


@pytest.fixture(scope="module")
def address(engine):
    return engine.cluster.scheduler_address


def rows(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_local_cluster_is_bound_to_loopback_with_pinned_single_thread_workers(engine, address, data):
    assert address.startswith("tcp://127.0.0.1:")
    import psutil  # a dependency of distributed

    me = psutil.Process()
    listening = [c.laddr.ip for p in [me, *me.children(recursive=True)] for c in p.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]  # fmt: skip
    assert listening and set(listening) == {"127.0.0.1"}  # scheduler, nannies, workers: loopback only
    info = engine.client.scheduler_info()["workers"]
    assert len(info) == 2 and all(w["nthreads"] == 1 and w["host"] == "127.0.0.1" for w in info.values())
    refs, models = prepare_models(data["models"][:1])
    run_documents(JobSpec("score", tuple(refs)), [data["docs"] / "crlf.txt"], engine, Path("out.jsonl"),
                  progress=False, shipped=models)  # fmt: skip
    for report in engine.worker_reports().values():
        assert report["numba_threads"] == 1  # NUMBA_NUM_THREADS=1 reached the worker before numba was imported
        assert report["warm_up_seconds"] > 0  # kernels compiled (or loaded) in setup, before the first task
    threads = engine.client.run(lambda: {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    assert all(t == {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"} for t in threads.values())


def test_score_on_dask_is_bit_identical_to_one_process(data, address):
    model, docs = data["models"][0], data["docs"]
    local = cli("score", model, docs, "--engine", "local", "-o", "local.jsonl", "--task-chars", TASK_CHARS)
    assert local.exit_code == 0, local.output
    remote = cli("score", model, docs, "--engine", f"dask={address}", "-o", "dask.jsonl", "--task-chars", TASK_CHARS)
    assert remote.exit_code == 0, remote.output
    assert Path("dask.jsonl").read_bytes() == Path("local.jsonl").read_bytes()
    out = rows("dask.jsonl")
    assert [r["id"] for r in out] == [d.id for d in iter_documents([docs])]  # input order, every document once
    assert len(out) == data["count"] and f"{data['count']} of {data['count']} documents written" in remote.stderr
    # the batched scores are the single-text command's, up to float32 rounding
    texts = {d.id: d.text() for d in iter_documents([docs]) if d.raw is None and d.error is None}
    from charrnn.model import load_model

    loaded = load_model(model)
    for row in out[:300:17]:
        expected = score_text(loaded, texts[row["id"]]).log_likelihood
        assert row["log_likelihood_nats"] == pytest.approx(expected, rel=1e-4)


def test_malformed_documents_become_error_rows_and_the_run_goes_on(data):
    result = cli("score", data["models"][0], data["docs"], "--engine", "local", "-o", "out.jsonl")
    assert result.exit_code == 0, result.output
    by_id = {r["id"]: r for r in rows("out.jsonl")}
    docs = data["docs"]
    assert by_id[str(docs / "bad.txt")]["error"] == "invalid utf-8 at byte offset 6 (byte 0xff)"
    assert "not valid JSON" in by_id[f"{docs / 'a.jsonl'}:301"]["error"]
    assert by_id["no-text"]["error"].endswith('"text" must be a string, got nothing')
    assert "not in the model's vocabulary" in by_id[7]["error"] and "X" in by_id[7]["error"]
    assert "needs at least 2" in by_id["one-char"]["error"]
    assert by_id[str(docs / "crlf.txt")]["characters"] == 12  # "\r\n" read as "\n", as for training
    assert sum("error" in r for r in by_id.values()) == 5
    assert "(5 failed)" in result.stderr
    skipped = cli("score", data["models"][0], docs, "--engine", "local", "--unk", "skip", "-o", "skip.jsonl")
    assert skipped.exit_code == 0, skipped.output
    assert {r["id"]: r for r in rows("skip.jsonl")}[7]["unknown"]["total"] == 3
    to_stdout = cli("score", data["models"][0], docs / "crlf.txt", "--engine", "local")  # no -o: JSON lines on stdout
    assert to_stdout.exit_code == 0 and json.loads(to_stdout.stdout)["id"] == str(docs / "crlf.txt")
    assert "1 of 1 documents written" in to_stdout.stderr


def test_attribute_on_dask_matches_one_process_and_the_single_text_command(data, address):
    models, docs = data["models"], data["docs"]
    common = ["attribute", docs, "-m", models[0], "-m", models[1], "--by-paragraph", "--task-chars", TASK_CHARS]
    assert cli(*common, "--engine", "local", "-o", "local.jsonl").exit_code == 0
    result = cli(*common, "--engine", f"dask={address}", "-o", "dask.jsonl")
    assert result.exit_code == 0, result.output
    assert Path("dask.jsonl").read_bytes() == Path("local.jsonl").read_bytes()
    from charrnn.model import load_model

    loaded = {"m1": load_model(models[0]), "m2": load_model(models[1])}
    row = {r["id"]: r for r in rows("dask.jsonl")}[str(docs / "para.txt")]
    expected = attribute((docs / "para.txt").read_text(), loaded, by_paragraph=True).to_dict()
    assert row["best"] == expected["best"] and row["scored"] == expected["scored"]
    for name in loaded:
        assert row["models"][name]["log_likelihood_nats"] == pytest.approx(
            expected["models"][name]["log_likelihood_nats"], rel=1e-4
        )
    assert [p["best"] for p in row["paragraphs"]] == [p["best"] for p in expected["paragraphs"]]


def test_a_worker_killed_mid_run_loses_no_result(data, engine, tmp_path):
    refs, models = prepare_models(data["models"][:1])
    spec = JobSpec("score", tuple(refs), {"unk": "skip"})
    with LocalEngine() as local:
        run_documents(spec, [data["docs"]], local, tmp_path / "local.jsonl", progress=False, task_chars=1500,
                      shipped=models)  # fmt: skip
    output = tmp_path / "dask.jsonl"
    pids = engine.client.run(os.getpid)
    victim = next(iter(pids.values()))
    killed = {}

    def kill_when_results_arrive():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = output.read_bytes().count(b"\n") if output.exists() else 0
            if lines:
                killed["lines"] = lines
                os.kill(victim, signal.SIGKILL)
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_when_results_arrive)
    killer.start()
    summary = run_documents(spec, [data["docs"]], engine, output, progress=False, task_chars=1500, shipped=models)
    killer.join()
    assert 0 < killed["lines"] < data["count"], "the worker was not killed mid-run"
    assert victim not in engine.client.run(os.getpid).values()
    assert summary.written == data["count"]
    assert output.read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_resume_output_completes_an_interrupted_run_exactly(data):
    model, docs = data["models"][0], data["docs"]
    args = ["score", model, docs, "--engine", "local", "--task-chars", "3000"]
    assert cli(*args, "-o", "full.jsonl").exit_code == 0
    full = Path("full.jsonl").read_bytes()
    cut = full.index(b"\n", len(full) // 2) + 40  # whole tasks' lines, then a line cut short (a crash mid-write)
    Path("part.jsonl").write_bytes(full[:cut])
    Path("part.jsonl.run.json").write_bytes(Path("full.jsonl.run.json").read_bytes())
    refused = cli(*args, "-o", "part.jsonl")
    assert_user_error(refused)
    assert "pass --resume-output" in refused.stderr
    resumed = cli(*args, "-o", "part.jsonl", "--resume-output")
    assert resumed.exit_code == 0, resumed.output
    assert Path("part.jsonl").read_bytes() == full
    assert "already in part.jsonl" in resumed.stderr
    other = cli("score", data["models"][1], docs, "--engine", "local", "-o", "part.jsonl", "--resume-output")
    assert_user_error(other)
    assert "written by a different run (models differ" in other.stderr


def test_bad_inputs_and_options_are_one_line_errors(data, tmp_path, monkeypatch):
    model = data["models"][0]
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "x", "text": "abc"}\n\n{"id": "x", "text": "def"}\n')
    result = cli("score", model, dup, "--engine", "local")
    assert_user_error(result)
    assert f"{dup}:3: duplicate document id 'x' (first at {dup}:1)" in result.stderr
    for args, message in [
        (["--engine", "spark"], "--engine must be local, dask or dask=SCHEDULER_ADDRESS"),
        (["--workers", "2"], "--workers only applies with --engine"),
        (["--engine", "local", "--per-char"], "--per-char does not apply with --engine"),
        (["--engine", "local", "--workers", "2"], "--workers sizes the local Dask cluster"),
        (["--engine", "local", "--resume-output"], "--resume-output needs an output file"),
        (["--engine", "local", "-o", tmp_path / "no" / "out.jsonl"], "does not exist"),
    ]:
        result = cli("score", model, data["docs"], *args)
        assert_user_error(result)
        assert message in result.stderr, (args, result.stderr)
    assert_user_error(cli("score", model, data["docs"] / "crlf.txt", data["docs"] / "para.txt"))
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the dask extra were not installed
    result = cli("score", model, data["docs"], "--engine", "dask")
    assert_user_error(result)
    assert result.stderr == "Error: --engine dask needs Dask: pip install 'charrnn[dask]'\n"


def cached(digest):
    from charrnn.distributed import models

    return digest in models._CACHE


def test_models_reach_workers_by_checked_path_or_shipped(data, engine, tmp_path):
    path = save(random_model(ALPHABET, hidden=16, dtype="float32", seed=5), tmp_path / "model.npz")  # new to workers
    refs, models = prepare_models([path])
    path.write_bytes(data["models"][1].read_bytes())  # rewritten after the run started
    spec = JobSpec("score", tuple(refs))
    doc = [data["docs"] / "crlf.txt"]
    with pytest.raises(CharrnnError, match=r"has sha256 \w+\.\.\., not \w+\.\.\. as when the run started"):
        run_documents(spec, doc, engine, tmp_path / "a.jsonl", progress=False, shipped=models)
    path.unlink()
    shipping = DaskEngine(engine.cluster.scheduler_address, ship="model")
    with shipping:
        run_documents(spec, doc, shipping, tmp_path / "b.jsonl", progress=False, shipped=models)
        resident = shipping.client.run(cached, refs[0].sha256)
        assert resident and all(resident.values())  # on every worker, though no worker could read the path
    assert not any(engine.client.run(cached, refs[0].sha256).values())  # the run's plugin is gone, its model too
    with LocalEngine() as local:
        run_documents(spec, doc, local, tmp_path / "c.jsonl", progress=False, shipped=models)
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "c.jsonl").read_bytes()


def test_sweep_of_four_trials_on_dask_reports_divergence_and_keeps_the_best(address, tmp_path):
    from conftest import make_text

    (tmp_path / "corpus.txt").write_text(make_text(3000), encoding="utf-8")
    (tmp_path / "sweep.toml").write_text(
        'corpus = "corpus.txt"\noutput = "runs"\n\n[train]\nsteps = 12\neval-every = 6\nbatch_size = 8\n'
        'seq_len = 16\noptimizer = "sgd"\nmomentum = 0.0\nclip = 0\nval_max_chars = 400\n\n'
        "[grid]\nlr = [0.05, 1e30]\nhidden = [8, 12]\n"
    )  # lr 1e30 makes the weights non-finite at the first step, every time: the guard gives up ("diverged")
    result = cli("sweep", tmp_path / "sweep.toml", "--engine", f"dask={address}", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    statuses = {t["id"]: t["status"] for t in summary["trials"]}
    assert statuses == {"trial-0": "ok", "trial-1": "ok", "trial-2": "diverged", "trial-3": "diverged"}
    ok = [t for t in summary["trials"] if t["status"] == "ok"]
    assert all(t["steps"] == 12 and t["best_val_loss_nats"] > 0 and t["seconds"] > 0 for t in ok)
    assert summary["best"] == min(ok, key=lambda t: t["best_val_loss_nats"])["id"]
    runs = tmp_path / "runs"
    best = {t["id"]: t for t in ok}[summary["best"]]
    assert (runs / "best.npz").read_bytes() == Path(best["model"]).read_bytes()
    assert json.loads((runs / "sweep.json").read_text())["best"] == summary["best"]
    assert "training diverged" in summary["trials"][2]["error"]
    assert all(" --threads 1 " in t["command"] and " --sample-every 0" in t["command"] for t in summary["trials"])
    again = cli("sweep", tmp_path / "sweep.toml", "--engine", "local", "--resume-output")  # nothing left to run
    assert again.exit_code == 0, again.output
    assert "trial-2     diverged" in again.stdout and f"best: {summary['best']}" in again.stdout


def test_sweep_files_are_checked_in_one_line(tmp_path):
    (tmp_path / "c.txt").write_text("abc")
    cases = {
        'corpus = "c.txt"\n[grid]\nlr = [1]\nbogus = [2]\n': "[grid] bogus is not an option of `charrnn train`",
        'corpus = "c.txt"\n[grid]\nlr = [1]\n[random]\nlr = [1]\n': "exactly one of [grid] or [random]",
        'corpus = "c.txt"\n[random]\nlr = [1]\n': "a random search needs search = { trials = N",
        'corpus = "c.txt"\nsearch = {trials = 2}\n[random]\nlr = {log_uniform = [0, 1]}\n': "log_uniform",
        'corpus = "c.txt"\n[train]\noutput = "x"\n[grid]\nlr = [1]\n': "set by the sweep",
        'corpus = "missing.txt"\n[grid]\nlr = [1]\n': "corpus",
        'corpus = "c.txt"\nlr = 3\n': "unknown key(s) lr",
        "corpus = [": "not valid TOML",
    }
    for text, message in cases.items():
        (tmp_path / "s.toml").write_text(text)
        result = cli("sweep", tmp_path / "s.toml")
        assert_user_error(result)
        assert message in result.stderr, (text, result.stderr)


def test_random_search_is_reproducible_and_within_bounds(tmp_path):
    from charrnn.distributed.sweep import load_sweep

    (tmp_path / "c.txt").write_text("abc")
    (tmp_path / "s.toml").write_text(
        'corpus = "c.txt"\nsearch = { trials = 6, seed = 3 }\n[random]\nlr = { log_uniform = [1e-4, 1e-2] }\n'
        "dropout = { uniform = [0.0, 0.5] }\nlayers = { int = [1, 3] }\nhidden = [32, 64]\n"
    )
    first, second = load_sweep(tmp_path / "s.toml"), load_sweep(tmp_path / "s.toml")
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    for trial in first.trials:
        p = trial.params
        assert 1e-4 <= p["lr"] <= 1e-2 and 0 <= p["dropout"] <= 0.5 and p["layers"] in (1, 2, 3)
        assert p["hidden"] in (32, 64) and trial.directory.endswith(trial.id)
    assert len({t.params["lr"] for t in first.trials}) == 6


def test_tasks_depend_on_the_input_order_only():
    documents = [Document(i, body="x" * n) for i, n in enumerate([5, 7, 3, 9, 1, 1, 1, 20])]
    tasks = [[d.id for d in task] for task in form_tasks(documents, task_chars=10)]
    assert tasks == [[0, 1], [2, 3], [4, 5, 6, 7]]
    assert [[d.id for d in t] for t in form_tasks(documents, task_chars=10, max_docs=2)][2] == [4, 5]
    assert parse_engine("dask=tcp://127.0.0.1:8786") == ("dask", "tcp://127.0.0.1:8786")
    assert parse_engine("local") == ("local", None)
    for bad in ("dask=", "local=x", "ray"):
        with pytest.raises(CharrnnError):
            parse_engine(bad)


def test_ordered_window_bounds_tasks_in_flight_and_the_reorder_buffer():
    """Completion in reverse order of submission: never more than max_in_flight running, never a task
    submitted further than `window` ahead of the oldest unfinished one."""
    running, log = [], []

    def submit(seq, payload):
        running.append(seq)
        log.append(("submit", seq, max(running) - min(running), len(running)))
        return seq

    def wait():  # the newest task finishes first: the oldest holds the window back
        seq = running.pop()
        return seq, seq * 10

    results = list(ordered_window(submit, wait, range(20), max_in_flight=3, window=5))
    assert sorted(results) == [(i, i * 10) for i in range(20)]
    assert max(entry[3] for entry in log) <= 3
    assert max(entry[2] for entry in log) < 5
