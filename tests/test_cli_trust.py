"""Issue 20, a command line people trust: no silent overwrites, options that explain themselves, output
that pipes. One test (or more) per point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.model import load_checkpoint

runner = CliRunner()
SMALL = ["--hidden", "8", "--batch-size", "4", "--seq-len", "8", "--sample-every", "0", "-q"]


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def trained(tmp_path, corpus_file):
    result = invoke("train", corpus_file, "-o", tmp_path / "keep.npz", "--steps", "6", "--eval-every", "3", *SMALL)
    assert result.exit_code == 0, result.output
    return tmp_path / "keep.npz"


# ---- 1. no silent overwrites; --resume writes back ----


def test_a_fresh_run_does_not_replace_a_checkpoint(tmp_path, corpus_file, trained):
    before = trained.read_bytes()
    result = invoke("train", corpus_file, "-o", trained, "--steps", "2", *SMALL)
    assert result.exit_code == 1 and len(error_lines(result)) == 1
    line = error_lines(result)[0]
    for fragment in ("keep.npz exists (a checkpoint trained 6 steps, best validation", "keep.best.npz",
                     "keep.metrics.jsonl", "--force", f"--resume {trained}"):  # fmt: skip
        assert fragment in line, (fragment, line)
    assert trained.read_bytes() == before
    forced = invoke("train", corpus_file, "-o", trained, "--steps", "2", "--force", *SMALL)
    assert forced.exit_code == 0, forced.output
    assert load_checkpoint(trained)[1]["step"] == 2


def test_a_fresh_run_does_not_replace_other_files(tmp_path, corpus_file):
    (tmp_path / "notes.npz").write_text("not a model")
    result = invoke("train", corpus_file, "-o", tmp_path / "notes.npz", "--steps", "2", *SMALL)
    assert result.exit_code == 1 and "notes.npz exists (not a charrnn checkpoint)" in result.stderr
    assert (tmp_path / "notes.npz").read_text() == "not a model"
    (tmp_path / "lone.metrics.jsonl").write_text("{}\n")  # a companion alone is work too
    result = invoke("train", corpus_file, "-o", tmp_path / "lone.npz", "--steps", "2", *SMALL)
    assert result.exit_code == 1 and "would replace lone.npz and lone.metrics.jsonl" in result.stderr.replace(
        str(tmp_path) + "/", "")


def test_resume_writes_back_to_the_resumed_file(tmp_path, corpus_file, trained):
    result = invoke("train", corpus_file, "--resume", trained, "--steps", "9", "-q")
    assert result.exit_code == 0, result.output
    assert f"resumed {trained} from step 6 (epoch 0); saving to {trained}" in result.stderr
    assert load_checkpoint(trained)[1]["step"] == 9 and not (tmp_path / "model.npz").exists()
    metrics = [json.loads(line)["step"] for line in (tmp_path / "keep.metrics.jsonl").read_text().splitlines()]
    assert metrics == [3, 6, 9]


def test_resume_into_another_existing_file_needs_force(tmp_path, corpus_file, trained):
    other = tmp_path / "other.npz"
    other.write_bytes(trained.read_bytes())
    result = invoke("train", corpus_file, "--resume", trained, "-o", other, "--steps", "9", "-q")
    assert result.exit_code == 1 and "other.npz exists" in result.stderr
    result = invoke("train", corpus_file, "--resume", trained, "-o", tmp_path / "new.npz", "--steps", "9", "-q")
    assert result.exit_code == 0, result.output
    assert load_checkpoint(tmp_path / "new.npz")[1]["step"] == 9 and load_checkpoint(trained)[1]["step"] == 6
    assert np.isfinite(load_checkpoint(tmp_path / "new.npz")[0].flat).all()


# ---- 2. options that explain themselves; exit codes; --version; completion ----


def help_text(*command):
    return " ".join(invoke(*command, "--help").output.replace("│", " ").split())  # undo the help's wrapping


def test_help_shows_defaults_and_choices_and_keeps_brackets():
    text = help_text("train")
    for fragment in ("--hidden <int> Hidden units per layer. [default: 512]", "[default: 2]",
                     "<tanh|relu>", "[default: tanh]", "<float32|float64>", "<adam|rmsprop|adagrad|sgd>",
                     "[default: (at each evaluation)]", "[default: ($XDG_CACHE_HOME/charrnn/ids)]"):  # fmt: skip
        assert fragment in text, fragment
    assert "pip install 'charrnn[plot]'" in help_text("curves") and "<step|time>" in help_text("curves")


@pytest.mark.parametrize(
    "args, code, fragment",
    [(["train", "c.txt", "--activation", "gelu"], 2, "'gelu' is not one of 'tanh', 'relu'"),
     (["train", "c.txt", "--optimizer", "lion"], 2, "--optimizer"),
     (["train", "c.txt", "--hidden", "abc"], 2, "--hidden"),
     (["train", "c.txt", "--hidden", "0"], 2, "--hidden must be >= 1, got 0"),
     (["train", "c.txt", "--seed", str(2**53)], 2, "--seed must be in [0, 2^53)"),
     (["train", "c.txt", "--resume", "a.npz", "--init-from", "b.npz"], 2, "exclude each other"),
     (["curves", "m.npz", "--x", "epoch"], 2, "'epoch' is not one of 'step', 'time'"),
     (["train", "c.txt", "--no-such-option"], 2, "--no-such-option"),
     (["no-such-command"], 2, "no-such-command"),
     (["train", "missing.txt"], 1, "missing.txt does not exist"),
     (["info", "missing.npz"], 1, "missing.npz does not exist")],
)  # fmt: skip
def test_usage_mistakes_exit_2_and_runtime_errors_exit_1(corpus_file, args, code, fragment):
    corpus_file.rename("c.txt")  # the working directory is tmp_path
    result = invoke(*args)
    assert result.exit_code == code, result.output
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], lines


def test_ctrl_c_exits_130(tmp_path, monkeypatch):
    import charrnn.model

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(charrnn.model, "load_checkpoint", interrupted)
    result = invoke("info", tmp_path / "m.npz")
    assert result.exit_code == 130 and error_lines(result) == ["Interrupted."]


def test_version():
    import charrnn

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"charrnn {charrnn.__version__}"


def test_shell_completion_completes_commands_and_choices():
    def complete(words, index):
        env = {"_CHARRNN_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(index)}
        result = runner.invoke(app, [], env=env, prog_name="charrnn")
        assert result.exit_code == 0, result.output
        return result.stdout.split()

    assert complete("charrnn tra", 1) == ["train"]
    assert complete("charrnn train c.txt --activation ", 4) == ["tanh", "relu"]
    # in a process of its own: in-process, state left by other tests of the suite made Click exit 1 here
    entry_point = str(Path(sys.executable).parent / "charrnn")  # the installed script, named as a user types it
    env = {**os.environ, "SHELL": "/bin/bash"}  # typer detects the shell from the environment, whatever follows
    script = subprocess.run([entry_point, "--show-completion", "bash"], capture_output=True, text=True, timeout=120,
                            env=env)  # fmt: skip
    assert script.returncode == 0 and "_CHARRNN_COMPLETE=complete_bash" in script.stdout, script.stderr


# ---- 3. one JSON convention (docs/json.md) ----

DOCS = (Path(__file__).resolve().parents[1] / "docs" / "json.md").read_text(encoding="utf-8")
RETIRED = {"val_bpc", "val_loss", "train_loss", "best_val_loss_bits", "best_val_loss_nats", "model_bits_per_char",
           "log_prob_model", "log_prob_sampling", "baselines_nats_per_char", "elapsed"}  # fmt: skip


def json_lines(result):
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def keys(value, prefix=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            if key not in ("unknown", "models", "excluded", "config", "train_config", "data_config", "extract"):
                yield from keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from keys(inner)


def test_every_json_record_follows_the_documented_convention(tmp_path, corpus_file, trained):
    (tmp_path / "two.txt").write_text("ab ab\n\nba ba ab\n")
    commands = [
        ["train", corpus_file, "-o", tmp_path / "j.npz", "--steps", "2", "--json", *SMALL],
        ["info", trained, "--json"],
        ["sample", trained, "-n", "20", "--num-samples", "2", "--json"],
        ["score", trained, "--text", "abc a\nbc", "--per-char", "--per-line", "--baseline", corpus_file, "--json"],
        ["attribute", tmp_path / "two.txt", "-m", trained, "--by-paragraph", "--json"],
        ["curves", trained, "--json"],
        ["corpus", "list", "--json"],
        ["corpus", "synth", "markov", "-o", tmp_path / "s.txt", "--length", "100", "--json"],
    ]
    kinds = set()
    for command in commands:
        for record in json_lines(invoke(*command)):
            kind = record["kind"]
            kinds.add(kind)
            assert f'`"{kind}"`' in DOCS, f"kind {kind} is not documented in docs/json.md"
            for key in set(keys(record)):
                assert f"`{key}`" in DOCS, f"{command[0]}: field {key} is not documented in docs/json.md"
                assert key not in RETIRED, f"{command[0]}: {key} is a retired name"
    assert kinds == {"train", "info", "sample", "char", "line", "score", "paragraph", "attribution", "metrics",
                     "curves", "corpus", "synth"}  # fmt: skip


def test_per_char_json_streams_one_line_per_character(trained):
    text = "abcdefgh " * 200
    lines = invoke("score", trained, "--text", text, "--per-char", "--json").stdout.splitlines()
    assert len(lines) == len(text)  # one line per scored character, then the summary: each parses alone
    assert [json.loads(line)["kind"] for line in lines] == ["char"] * (len(text) - 1) + ["score"]


def test_a_random_sample_seed_survives_a_double_and_reproduces_the_text(trained):
    first = json_lines(invoke("sample", trained, "-n", "30", "--json"))[0]
    assert 0 <= first["seed"] < 2**53 and float(first["seed"]) == first["seed"]
    again = json_lines(invoke("sample", trained, "-n", "30", "--json", "--seed", int(float(first["seed"]))))[0]
    assert again["text"] == first["text"]
    assert invoke("sample", trained, "--seed", 2**53).exit_code == 2


def test_train_and_corpus_get_have_json(tmp_path, corpus_file, trained):
    [record] = json_lines(invoke("train", corpus_file, "--resume", trained, "--steps", "8", "--json", "-q"))
    assert record["kind"] == "train" and record["steps"] == 8 and record["output"] == str(trained)
    assert record["best_val_bits_per_char"] == pytest.approx(record["best_val_nats_per_char"] / np.log(2))


# ---- 4. progress: a total and ETA under --time, a compile notice, tqdm's terminal detection ----

ROOT = Path(__file__).resolve().parents[1]


def run_charrnn(args, terminal, extra_env=None):
    """(exit status, stderr) of `python -m charrnn ARGS` in a real process, its stderr a pseudo-terminal or
    a pipe."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    env = {key: value for key, value in os.environ.items() if not key.startswith("TQDM_")}
    env.update(PYTHONPATH=str(ROOT), **(extra_env or {}))
    command = [sys.executable, "-m", "charrnn", *map(str, args)]
    if not terminal:
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        return done.returncode, done.stderr.decode()
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # the process closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return process.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_the_bar_is_drawn_on_a_terminal_only_and_obeys_tqdm_disable(tmp_path, corpus_file):
    args = ["train", corpus_file, "--steps", "10", "--eval-every", "5", "--hidden", "8", "--batch-size", "4",
            "--seq-len", "8", "--sample-every", "0", "--force", "-o", tmp_path / "p.npz"]  # fmt: skip
    status, terminal = run_charrnn(args, terminal=True)
    assert status == 0 and "/10 [" in terminal and "step" in terminal, terminal
    status, piped = run_charrnn(args, terminal=False)
    assert status == 0 and "/10 [" not in piped and "\r" not in piped, piped
    status, disabled = run_charrnn(args, terminal=True, extra_env={"TQDM_DISABLE": "1"})
    assert status == 0 and "/10 [" not in disabled and "reading corpus" not in disabled, disabled
    assert "reading corpus" in terminal  # the encoding bar follows the same rule


def test_a_time_budget_bar_counts_seconds(tmp_path, corpus_file):
    args = ["train", corpus_file, "--time", "2", "--eval-every", "1000000", "--hidden", "8", "--batch-size", "4",
            "--seq-len", "8", "--sample-every", "0", "--force", "-o", tmp_path / "t.npz"]  # fmt: skip
    status, terminal = run_charrnn(args, terminal=True)
    assert status == 0 and "/2 s [" in terminal and "<" in terminal, terminal  # a total and a remaining time


class Terminal:
    """A text sink that says it is a terminal, so tqdm draws into it."""

    def __init__(self):
        import io

        self.buffer = io.StringIO()

    def write(self, text):
        return self.buffer.write(text)

    def flush(self):
        pass

    def isatty(self):
        return True


def test_compile_notice_and_the_first_step_kept_out_of_the_rate(monkeypatch):
    import time

    import charrnn.progress
    from charrnn.progress import TrainingBar

    monkeypatch.setattr(charrnn.progress, "kernels_compiled", lambda: False)
    logged = []
    bar = TrainingBar(True, 100, None, 0, logged.append, file=Terminal())
    bar.step_starting()
    time.sleep(0.3)  # the compiling first step
    bar.step_done(1, {})
    bar.step_starting()
    bar.step_done(2, {})
    assert logged[0].startswith("compiling kernels (first run, ~") and logged[1].startswith("kernels compiled in")
    assert len(logged) == 2 and bar.bar.format_dict["elapsed"] < 0.2  # the 0.3 s are not in the rate
    bar.close()
    monkeypatch.setattr(charrnn.progress, "kernels_compiled", lambda: True)
    quiet = []
    bar = TrainingBar(True, 100, None, 0, quiet.append, file=Terminal())
    bar.step_starting()
    bar.step_done(1, {})
    bar.close()
    assert quiet == []


def test_the_kernel_cache_check_sees_compiled_kernels(trained):
    from charrnn.progress import kernels_compiled

    assert kernels_compiled() is True  # training `trained` compiled and cached them


# ---- 6. the checkpoint as a model card ----


def test_the_checkpoint_records_where_it_came_from_and_info_shows_it(tmp_path, corpus_file):
    import hashlib
    from datetime import datetime

    import charrnn.provenance

    model = tmp_path / "card.npz"
    first = invoke("train", corpus_file, "-o", model, "--steps", "4", "--description", "a test model", *SMALL)
    assert first.exit_code == 0, first.output
    created = json.loads(invoke("info", model, "--json").stdout)["created_at"]
    resumed = invoke("train", corpus_file, "--resume", model, "--steps", "6", "--lr", "0.001", "-q")
    assert resumed.exit_code == 0, resumed.output
    card = json.loads(invoke("info", model, "--json").stdout)
    assert card["charrnn_version"] == charrnn.provenance.version() and card["created_at"] == created
    assert datetime.fromisoformat(card["created_at"]).tzinfo is not None
    assert card["description"] == "a test model"  # kept through the resume
    assert card["commands"] == [
        f"charrnn train {corpus_file} --output {model} -q --description 'a test model' --hidden 8 --seq-len 8 "
        "--batch-size 4 --steps 4 --sample-every 0",  # arguments, then options in --help's order
        f"charrnn train {corpus_file} --resume {model} -q --lr 0.001 --steps 6",
    ]
    data = corpus_file.read_bytes()
    assert card["corpora"] == [{"path": str(corpus_file), "role": "train", "compression": None,
                                "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]  # fmt: skip
    assert card["train_config"]["lr"] == 0.001 and card["data_config"]["val_frac"] == 0.1
    assert card["role"] == "latest" and card["elapsed_seconds"] > 0
    text = invoke("info", model).stdout
    for fragment in ("description: a test model", f"created: {created} by charrnn", "command: charrnn train",
                     "resumed: charrnn train", f"corpus (train): {corpus_file}, {len(data):,} bytes, sha256",
                     "training options: --seq-len 8 --batch-size 4 --lr 0.001", "data options: --val-frac 0.1",
                     "role: latest"):  # fmt: skip
        assert fragment in text, fragment


def test_a_fine_tuned_checkpoint_names_its_origin(tmp_path, corpus_file, trained):
    result = invoke("train", corpus_file, "--init-from", trained, "-o", tmp_path / "ft.npz", "--steps", "2", *SMALL)
    assert result.exit_code == 0, result.output
    card = json.loads(invoke("info", tmp_path / "ft.npz", "--json").stdout)
    assert card["fine_tuned_from"] == str(trained) and card["description"] is None
    assert f"fine-tuned from: {trained}" in invoke("info", tmp_path / "ft.npz").stdout
