"""Hostile command lines (issue 21): every mistake, impossible size or unreadable/unwritable stream is one
`Error:` line naming the file or option, with exit 2 for a usage mistake and 1 otherwise — never a
traceback, never an allocation the request asked for before it was checked, never an input overwritten.
"""

import json
import os
import sys

import numpy as np
import pytest
from tiny_models import random_model, save
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.model import load_checkpoint

runner = CliRunner()
SMALL = ["--hidden", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "8", "--sample-every", "0", "-q"]
BAD_BYTE = "\udcff"  # what Python makes of the byte 0xff in an argument (not UTF-8)


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def assert_one_line_error(result, code, *fragments):
    """Exit `code`, exactly one non-empty stderr line, starting `Error: `, holding every fragment; no
    exception escaped (a traceback)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A saved model with a metrics log beside it, and a corpus in its vocabulary."""
    directory = tmp_path_factory.mktemp("hostile")
    save(random_model("abcdefgh \n", hidden=6, dtype="float32"), directory / "m.npz")
    records = [{"step": 2 * i, "elapsed_seconds": float(i), "train_nats_per_char": 2.0 - 0.1 * i,
                "val_nats_per_char": 2.1 - 0.1 * i} for i in range(1, 6)]  # fmt: skip
    (directory / "m.metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (directory / "text.txt").write_text("abc defg\nhab cde\n" * 50)
    return directory


# ---- a battery of impossible or malformed requests: one line each, before any work ----

HUGE = str(10**20)
USAGE = [  # (arguments, fragment of the message); exit 2: a usage mistake, refused before any file is read
    (["train", "c.txt", "--epochs", "inf"], "--epochs must be a finite number"),
    (["train", "c.txt", "--epochs", "nan"], "--epochs must be a finite number"),
    (["train", "c.txt", "--time", "inf"], "--time must be a finite number"),
    (["train", "c.txt", "--time", "-5"], "--time must be > 0"),
    (["train", "c.txt", "--lr", "inf"], "--lr must be a finite number"),
    (["train", "c.txt", "--weight-decay", "inf"], "--weight-decay must be a finite number"),
    (["train", "c.txt", "--clip", "nan"], "--clip must be a finite number"),
    (["train", "c.txt", "--val-frac", "nan"], "--val-frac must be a finite number"),
    (["train", "c.txt", "--seed", "-1"], "--seed must be in [0, 2^53)"),
    (["train", "c.txt", "--seed", str(2**53)], "--seed must be in [0, 2^53)"),
    (["train", "c.txt", "--encoding", "rot13"], "--encoding is not a text encoding"),
    (["train", "c.txt", "--encoding", "base64"], "--encoding is not a text encoding"),
    (["train", "c.txt", "--encoding", "zlib_codec"], "--encoding is not a text encoding"),
    (["train", "c.txt", "--encoding", "no-such-codec"], "--encoding is not a text encoding"),
    (["train", "c.txt", "--sample-length", HUGE], "--sample-length must be in [1, 100,000]"),
    (["train", "c.txt", "--sample-temperatures", "inf"], "--sample-temperatures must be positive numbers"),
    (["sample", "m.npz", "--temperature", "nan"], "--temperature must be a positive number"),
    (["sample", "m.npz", "--top-p", "nan"], "--top-p must be in (0, 1]"),
    (["sample", "m.npz", "--seed", "-1"], "--seed"),
    (["sample", "m.npz", "--prime", f"a{BAD_BYTE}b"], "--prime is not valid text: byte 0xff at character 2"),
    (["sample", "m.npz", "--stop", BAD_BYTE], "--stop is not valid text: byte 0xff"),
    (["sample", "m.npz", "--unk", f"map:{BAD_BYTE}"], "--unk is not valid text"),
    (["score", "m.npz", "--text", f"ab{BAD_BYTE}c"], "--text is not valid text: byte 0xff at character 3"),
    (["score", "m.npz", "text.txt", "--per-char", "--alternatives", str(10**11)], "--alternatives must be at most"),
    (["curves", "m.npz", "--width", "100000"], "--width"),
    (["curves", "m.npz", "--height", "100000"], "--height"),
    (["corpus", "synth", "markov", "-o", "s.txt", "--seed", "-1"], "seed must be >= 0"),
    (["corpus", "synth", "brackets", "-o", "s.txt", "--seed", "-5"], "seed must be >= 0"),
    (["corpus", "synth", "markov", "-o", "s.txt", "--concentration", "inf"], "concentration must be a positive finite"),
]


@pytest.mark.parametrize(("args", "fragment"), USAGE, ids=[" ".join(a)[:60] for a, _ in USAGE])
def test_usage_mistakes_are_one_line_and_exit_2(model_dir, args, fragment):
    os.chdir(model_dir)
    (model_dir / "c.txt").write_text("abc abc\n" * 100)
    assert_one_line_error(invoke(*args), 2, fragment)
    assert not (model_dir / "s.txt").exists() and not (model_dir / "model.npz").exists()


TOO_BIG = [  # (arguments, fragments); exit 1: the machine cannot hold it, said with the estimate, nothing allocated
    (["train", "c.txt", "--hidden", "100000", "--layers", "2"], ["--hidden 100000 --layers 2", "needs ~", "GiB"]),
    (["train", "c.txt", "--batch-size", str(10**9), "--hidden", "8"], ["--batch-size 1000000000", "needs ~"]),
    (["train", "c.txt", "--seq-len", str(10**9), "--hidden", "8"], ["--seq-len 1000000000", "needs ~"]),
    (["train", "c.txt", "--layers", "100000", "--hidden", "1000"], ["--layers 100000", "needs ~"]),
    (["sample", "m.npz", "--num-samples", str(10**9)], ["1,000,000,000 sample(s)", "needs ~"]),
    (["sample", "m.npz", "-n", HUGE, "--json"], ["characters (texts kept in memory)", "needs ~"]),
    (["sample", "m.npz", "-n", HUGE, "--num-samples", "2"], ["2 sample(s)", "needs ~"]),
    (["corpus", "synth", "markov", "-o", "s.txt", "--length", str(10**12)], ["--length 1,000,000,000,000", "needs ~"]),
    (["corpus", "synth", "brackets", "-o", "s.txt", "--length", str(10**12)], ["--length", "needs ~"]),
]


@pytest.mark.parametrize(("args", "fragments"), TOO_BIG, ids=[" ".join(a)[:60] for a, _ in TOO_BIG])
def test_sizes_beyond_memory_are_refused_with_the_estimate(model_dir, args, fragments):
    os.chdir(model_dir)
    (model_dir / "c.txt").write_text("abc abc\n" * 100)
    line = assert_one_line_error(invoke(*args), 1, *fragments)
    assert "this machine has" in line and "available" in line
    assert not (model_dir / "s.txt").exists() and not (model_dir / "model.npz").exists()


# ---- outputs never clobber inputs ----


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "dot-dot path"])
def test_train_refuses_to_write_over_its_corpus(tmp_path, corpus_file, how):
    target = {"same path": corpus_file, "symlink": tmp_path / "link.npz", "hard link": tmp_path / "hard.npz",
              "dot-dot path": tmp_path / "sub" / ".." / corpus_file.name}[how]  # fmt: skip
    (tmp_path / "sub").mkdir()
    if how == "symlink":
        target.symlink_to(corpus_file)
    if how == "hard link":
        os.link(corpus_file, target)
    before = corpus_file.read_bytes()
    line = assert_one_line_error(invoke("train", corpus_file, "-o", target, "--force", "--steps", "2", *SMALL), 1)
    assert "is the same file as corpus" in line and "destroy the input" in line
    assert corpus_file.read_bytes() == before


def test_train_refuses_outputs_that_are_its_validation_file_or_init_model(tmp_path, corpus_file, model_dir):
    val = tmp_path / "val.txt"
    val.write_text(corpus_file.read_text()[:500])
    before = val.read_bytes()
    line = assert_one_line_error(invoke("train", corpus_file, "--val-file", val, "-o", val, "--force", *SMALL), 1)
    assert "same file as --val-file" in line and val.read_bytes() == before
    base = tmp_path / "base.npz"
    base.write_bytes((model_dir / "m.npz").read_bytes())
    line = assert_one_line_error(invoke("train", corpus_file, "--init-from", base, "-o", base, "--force", *SMALL), 1)
    assert "same file as --init-from" in line and base.read_bytes() == (model_dir / "m.npz").read_bytes()
    # a companion counts too: -o m.npz would write the metrics log over a corpus named m.metrics.jsonl
    log = tmp_path / "x.metrics.jsonl"
    log.write_text(corpus_file.read_text())
    line = assert_one_line_error(invoke("train", log, "-o", tmp_path / "x.npz", *SMALL), 1)
    assert "the metrics log" in line and "same file as corpus" in line


def test_curves_and_corpus_get_refuse_outputs_that_are_their_inputs(model_dir):
    metrics = model_dir / "m.metrics.jsonl"
    before = metrics.read_bytes()
    assert "same file as the metrics file" in assert_one_line_error(
        invoke("curves", model_dir / "m.npz", "-o", metrics), 1)
    model = (model_dir / "m.npz").read_bytes()
    assert "same file as the metrics file" in assert_one_line_error(invoke("curves", metrics, "-o", metrics), 1)
    for name in ("m.npz", "m.best.npz"):  # the models the log belongs to are history too
        (model_dir / "m.best.npz").write_bytes(model)
        line = assert_one_line_error(invoke("curves", metrics, "-o", model_dir / name), 1)
        assert "same file as the" in line and (model_dir / name).read_bytes() == model
    assert metrics.read_bytes() == before


# ---- hostile streams: stdin, stdout, arguments ----


@pytest.mark.parametrize(("data", "fragment"), [
    (b"ab\xffcd", "invalid utf-8 at byte offset 2 (byte 0xff), line 1, column 3"),
    (b"ab\xed\xb3\xbfcd", "invalid utf-8 at byte offset 2"),  # a surrogate encoded as UTF-8 is not UTF-8
    (b"abc\ncd\xc3", "invalid utf-8 at byte offset 6"),  # cut in the middle of a character
    (b"", "is empty: nothing to score"),
    (b"a", "scoring needs at least 2"),
    (b"ab\x00cd", "not in the model's vocabulary"),
])  # fmt: skip
def test_hostile_stdin_is_one_line_naming_where(model_dir, data, fragment):
    line = assert_one_line_error(invoke("score", model_dir / "m.npz", "-", input=data), 1, fragment)
    assert "<stdin>" in line


def test_surrogates_reach_no_codec(model_dir):
    """A lone surrogate in the library's hands is an unknown character like any other, never a crash."""
    from charrnn.model import load_model

    model = load_model(model_dir / "m.npz")
    ids, report = model.vocab.encode_with_report(f"ab{BAD_BYTE}c", unk="skip")
    assert ids.tolist() == model.vocab.encode("abc").tolist() and report.total == 1


def test_a_codec_that_makes_surrogates_is_refused_naming_the_place(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("abc\\nab\n" * 50 + "x\\udcffy\n")
    line = assert_one_line_error(invoke("train", corpus, "--encoding", "unicode_escape", *SMALL), 1)
    assert "lone surrogate U+DCFF" in line and "c.txt" in line and "use another --encoding" in line


@pytest.mark.parametrize("command", [["info", "{m}"], ["sample", "{m}", "-n", "50", "--seed", "1"],
                                     ["score", "{m}", "--text", "abcabc"], ["corpus", "list"]])  # fmt: skip
@pytest.mark.parametrize("stdout", ["/dev/full", "closed"])
def test_a_full_or_closed_stdout_is_one_line(model_dir, command, stdout):
    """Run for real: only a real process has a stdout that is full (/dev/full) or closed (>&-)."""
    import subprocess

    args = [sys.executable, "-m", "charrnn", *[a.format(m=model_dir / "m.npz") for a in command]]
    if stdout == "closed":
        done = subprocess.run(args, stdout=None, stderr=subprocess.PIPE, close_fds=True, timeout=120,
                              preexec_fn=lambda: os.close(1))  # fmt: skip
    else:
        with open("/dev/full", "w") as full:
            done = subprocess.run(args, stdout=full, stderr=subprocess.PIPE, timeout=120)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("Error: cannot write to standard output"), stderr
    assert ("No space left on device" if stdout == "/dev/full" else "it is closed") in stderr


def test_a_closed_pipe_is_not_an_error(model_dir):
    import subprocess

    command = f"{sys.executable} -m charrnn sample {model_dir / 'm.npz'} -n 200000 --seed 1 | head -c 100"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, timeout=120)
    assert done.returncode == 0 and len(done.stdout) == 100 and done.stderr == b"", done.stderr


@pytest.fixture
def denied(monkeypatch):
    """Files that cannot be opened, as for a user without the permission (tests may run as root, whom
    permissions do not stop, so the refusal is simulated where Python opens files)."""
    import builtins
    import io

    paths: set[str] = set()
    real_open, real_os_open = builtins.open, os.open

    def check(file):
        if isinstance(file, (str, os.PathLike)) and paths & {os.path.abspath(file), os.path.dirname(os.path.abspath(
                file))}:  # fmt: skip
            raise PermissionError(13, "Permission denied", str(file))

    def fake_open(file, *args, **kwargs):
        check(file)
        return real_open(file, *args, **kwargs)

    def fake_os_open(file, *args, **kwargs):
        check(file)
        return real_os_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    return lambda path: paths.add(os.path.abspath(path))


def test_permission_errors_name_the_file(tmp_path, model_dir, corpus_file, denied):
    model = tmp_path / "locked.npz"
    model.write_bytes((model_dir / "m.npz").read_bytes())
    denied(model)
    denied(corpus_file)
    for args in (["info", model], ["score", model, "--text", "abc"], ["sample", model, "-n", "5"]):
        assert_one_line_error(invoke(*args), 1, "locked.npz", "Permission denied")
    assert_one_line_error(invoke("score", model_dir / "m.npz", corpus_file), 1, "corpus.txt", "Permission denied")
    assert_one_line_error(invoke("train", corpus_file, "-o", tmp_path / "new.npz", *SMALL), 1, "corpus.txt",
                          "Permission denied")  # fmt: skip
    denied(tmp_path / "locked")  # a directory nobody may write in
    (tmp_path / "locked").mkdir()
    for args in (["export", model_dir / "m.npz", "-o", tmp_path / "locked" / "out.st"],
                 ["corpus", "synth", "markov", "-o", tmp_path / "locked" / "s.txt", "--length", "100"],
                 ["train", model_dir / "text.txt", "-o", tmp_path / "locked" / "m.npz", *SMALL]):  # fmt: skip
        assert_one_line_error(invoke(*args), 1, "Permission denied")


# ---- hostile metrics logs ----


@pytest.mark.parametrize(("content", "outcome"), [
    ('{"step": 1, "elapsed_seconds": 1, "train_nats_per_char": 2.0}\n{"step": 2, "elapsed_seconds": 2, '
     '"train_nats_per_char": 1.9}\n{"step": 3, "tr', "plot"),  # an append cut short by kill -9
    ('{"step": 1, "train_nats_per_char": 2.0}\nnot json\n{"step": 3, "train_nats_per_char": 1.9}\n', "line 2"),
    ('{"step": true, "train_nats_per_char": 2.0}\n', "line 1 is not a metrics record"),
    ('{"step": 1.5, "train_nats_per_char": 2.0}\n', "line 1 is not a metrics record"),
    ('[1, 2]\n', "line 1 is not a metrics record"),
    ('{"step": 1, "elapsed_seconds": Infinity, "train_nats_per_char": NaN}\n', "no losses to plot"),
    ('{"step": 1, "elapsed_seconds": 1e999, "train_nats_per_char": 2.0}\n{"step": 2, "elapsed_seconds": 2, '
     '"train_nats_per_char": 1.0}\n', "plot"),
    ("[" * 100000 + "\n", "line 1 is not valid JSON"),
    ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "cannot read"),
])  # fmt: skip
def test_hostile_metrics_logs(tmp_path, content, outcome):
    path = tmp_path / "h.metrics.jsonl"
    path.write_bytes(content.encode("latin-1") if outcome == "cannot read" else content.encode())
    result = invoke("curves", path, "--x", "time")
    if outcome == "plot":
        assert result.exit_code == 0, result.output
        json_result = invoke("curves", path, "--json")  # a number JSON cannot hold is null, never NaN
        assert json_result.exit_code == 0
        for line in json_result.stdout.splitlines():
            json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in JSON output"))
    else:
        assert_one_line_error(result, 1, outcome)


def test_sampling_a_model_with_impossible_characters_prints_no_nan(tmp_path):
    """A probability of 0 (a logit of -1e30) has infinite surprisal: JSON says null, not Infinity."""
    model = random_model("abcdefgh \n", hidden=4, dtype="float64")
    a = model.vocab.index["a"]
    model.params["by"][a] = -1e30
    model.params["Wy"][:, a] = 0.0
    save(model, tmp_path / "z.npz")
    result = invoke("score", tmp_path / "z.npz", "--text", "bab", "--per-char", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line, parse_constant=lambda name: pytest.fail(name)) for line in result.stdout.splitlines()]
    assert rows[0]["prob"] == 0.0 and rows[-1]["perplexity"] is None


def test_models_that_load_give_finite_scores(model_dir):
    _, meta, _ = load_checkpoint(model_dir / "m.npz")
    result = invoke("score", model_dir / "m.npz", model_dir / "text.txt", "--json")
    record = json.loads(result.stdout)
    assert result.exit_code == 0 and np.isfinite(record["bits_per_char"]) and meta["format"] == "charrnn-checkpoint"


def test_file_names_that_are_not_utf8_work_and_are_named(tmp_path, model_dir):
    """A name with bytes that are not UTF-8 (a Latin-1 file system, say) is a file like any other."""
    model = tmp_path / os.fsdecode(b"mod\xe8le.npz")
    model.write_bytes((model_dir / "m.npz").read_bytes())
    text = tmp_path / os.fsdecode(b"t\xe9xte.txt")
    text.write_text("abc defg\nhab cde\n" * 5)
    for args in (["info", model], ["score", model, text], ["sample", model, "-n", "20", "--seed", "1"]):
        result = invoke(*args)
        assert result.exit_code == 0 and result.exception is None, result.output
    missing = tmp_path / os.fsdecode(b"absent\xff.txt")
    assert_one_line_error(invoke("score", model, missing), 1, "does not exist")


@pytest.mark.parametrize("command", [
    ["train", "{text}", "-o", "{out}", *SMALL], ["corpus", "synth", "markov", "-o", "{out}", "--length", "100"],
    ["export", "{model}", "-o", "{out}", "--force"],
])  # fmt: skip
@pytest.mark.parametrize("kind", ["FIFO", "directory"])
def test_an_output_that_is_not_a_regular_file_is_never_replaced(tmp_path, model_dir, command, kind):
    """Writing is a rename over the output: over a FIFO or a device (-o /dev/null as root) it would replace
    the node itself. Refused, naming it, before any work; the node is still there."""
    out = tmp_path / "node"
    if kind == "FIFO":
        os.mkfifo(out)
    else:
        out.mkdir()
    args = [a.format(text=model_dir / "text.txt", out=out, model=model_dir / "m.npz") for a in command]
    assert_one_line_error(invoke(*args), 1, f"cannot write {out}: it is")
    assert (out.is_fifo() if kind == "FIFO" else out.is_dir()) and sorted(os.listdir(tmp_path)) == ["node"]
