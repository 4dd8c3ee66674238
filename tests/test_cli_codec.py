"""`charrnn compress` / `decompress` as a user meets them, and the determinism that makes a compressed file
portable: other thread counts in other processes, and files compressed once on the developers' machine
(tests/data/codec/, written by make_fixtures.py) decompressed — and recompressed byte for byte — wherever
the tests run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import markov_text, random_model, save
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.codec import DEFAULT_ADAPTATION, Adaptation, compress, decompress
from charrnn.model import load_model

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parent / "data" / "codec"
ALPHABET = "abcdefgh \n"


def invoke(*args, stdin=None):
    return runner.invoke(app, [str(a) for a in args], input=stdin)


def assert_one_line_error(result, *fragments, status=1):
    assert result.exit_code == status, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def files(tmp_path):
    model = save(random_model(ALPHABET, hidden=12, dtype="float32", seed=2), tmp_path / "m.npz")
    text = tmp_path / "t.txt"
    text.write_bytes((markov_text(3000, ALPHABET, chain_seed=3) + "ünïcode 🙂\r\n").encode())
    return model, text


def test_round_trip_with_default_names(files):
    model, text = files
    result = invoke("compress", model, text)
    assert result.exit_code == 0, result.output
    assert "bits/byte" in result.stderr and "t.txt.crz" in result.stderr
    original = text.read_bytes()
    text.unlink()
    result = invoke("decompress", model, f"{text}.crz")
    assert result.exit_code == 0, result.output
    assert text.read_bytes() == original


def test_stdin_and_stdout(files):
    model, text = files
    compressed = invoke("compress", model, "-", stdin=text.read_bytes())
    assert compressed.exit_code == 0, compressed.output
    assert compressed.stdout_bytes[:4] == b"CRZ\x1a"
    restored = invoke("decompress", model, "-", stdin=compressed.stdout_bytes)
    assert restored.exit_code == 0 and restored.stdout_bytes == text.read_bytes()
    to_stdout = invoke("decompress", model, "-", "-o", "-", "-q", stdin=compressed.stdout_bytes)
    assert to_stdout.stdout_bytes == text.read_bytes() and to_stdout.stderr == ""


def test_json_summary_and_adapt(files, tmp_path):
    model, text = files
    result = invoke("compress", model, text, "-o", tmp_path / "a.crz", "--adapt", "--adapt-lr", "0.05",
                    "--adapt-window", "8", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["original_bytes"] == text.stat().st_size and summary["compressed_bytes"] < summary["original_bytes"]
    assert summary["kind"] == "compression" and summary["adapt"] == {"lr": 0.05, "window": 8}
    assert {"bits_per_byte", "kilobytes_per_second", "header_bytes", "characters", "escaped_characters",
            "cpu_seconds"} <= set(summary)  # fmt: skip
    restored = invoke("decompress", model, tmp_path / "a.crz", "-o", tmp_path / "back.txt", "--json")
    record = json.loads(restored.stdout)
    assert restored.exit_code == 0 and record["original_bytes"] == text.stat().st_size
    assert record["kind"] == "decompression" and record["adapt"] == {"lr": 0.05, "window": 8}
    assert (tmp_path / "back.txt").read_bytes() == text.read_bytes()


def test_adapt_defaults_are_the_library_defaults():
    params = {p.name: p.default for p in __import__("typer.main").main.get_command(app).commands["compress"].params}
    assert (params["adapt_lr"], params["adapt_window"]) == DEFAULT_ADAPTATION


def test_refuses_to_overwrite(files, tmp_path):
    model, text = files
    assert_one_line_error(invoke("compress", model, text, "-o", text), "is an input")
    assert_one_line_error(invoke("compress", model, text, "-o", model), "is an input")
    assert invoke("compress", model, text).exit_code == 0
    assert_one_line_error(invoke("compress", model, text), "already exists", "--force")
    assert invoke("compress", model, text, "--force").exit_code == 0
    assert_one_line_error(invoke("decompress", model, f"{text}.crz"), "already exists")
    assert_one_line_error(invoke("decompress", model, f"{text}.crz", "-o", f"{text}.crz", "-f"), "is an input")
    assert_one_line_error(invoke("compress", model, text, "-o", tmp_path, "-f"), "is a directory")


def test_bad_inputs_are_one_line_errors_and_write_nothing(files, tmp_path):
    model, text = files
    assert invoke("compress", model, text, "-o", tmp_path / "good.crz").exit_code == 0
    blob = (tmp_path / "good.crz").read_bytes()
    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 1
    (tmp_path / "damaged.crz").write_bytes(bytes(damaged))
    (tmp_path / "short.crz").write_bytes(blob[:-3])
    other = save(random_model(ALPHABET, hidden=12, dtype="float32", seed=3), tmp_path / "other.npz")
    out = tmp_path / "out.txt"
    cases = [
        (("decompress", model, tmp_path / "damaged.crz", "-o", out), ("damaged.crz is corrupt",)),
        (("decompress", model, tmp_path / "short.crz", "-o", out), ("short.crz is truncated",)),
        (("decompress", other, tmp_path / "good.crz", "-o", out), ("another model", "other.npz")),
        (("decompress", model, text, "-o", out), ("not a charrnn compressed file",)),
        (("decompress", model, text), ("does not end in .crz", "-o")),
        (("decompress", model, tmp_path / "missing.crz", "-o", out), ("missing.crz does not exist",)),
        (("compress", model, tmp_path / "missing.txt"), ("missing.txt does not exist",)),
        (("compress", tmp_path / "nope.npz", text, "-o", tmp_path / "x.crz"), ("nope.npz does not exist",)),
        (("compress", model, tmp_path), ("is not a file",)),
    ]
    for args, fragments in cases:
        assert_one_line_error(invoke(*args), *fragments)
    usage = [  # a bad option value is a usage error: status 2, as Click's own
        (("compress", model, text, "-o", "-", "--json"), ("--json prints on stdout",)),
        (("compress", model, text, "-o", tmp_path / "y.crz", "--adapt", "--adapt-lr", "0"), ("--adapt-lr",)),
        (("compress", model, text, "-o", tmp_path / "y.crz", "--adapt", "--adapt-window", "0"), ("--adapt-window",)),
    ]
    for args, fragments in usage:
        assert_one_line_error(invoke(*args), *fragments, status=2)
    assert not out.exists() and not (tmp_path / "y.crz").exists() and not (tmp_path / "x.crz").exists()
    assert not list(tmp_path.glob(".*.part"))  # atomic writes leave no temporary behind


def test_no_compressed_data_on_a_terminal(files, monkeypatch):
    from charrnn.codec import files as rules

    monkeypatch.setattr(rules, "stdout_is_terminal", lambda: True)
    model, text = files
    assert_one_line_error(invoke("compress", model, text, "-o", "-"), "not written to a terminal")


# ---- determinism across processes, thread counts and machines ----

WORKER = """
import sys
from charrnn.codec import Adaptation, compress, decompress
from charrnn.model import load_model
mode, model, source, target, adapt = sys.argv[1:]
data = open(source, "rb").read()
m = load_model(model)
if mode == "compress":
    out = compress(m, data, adapt=Adaptation(0.05, 16) if adapt == "1" else None)[0]
else:
    out = decompress(m, data)[0]
open(target, "wb").write(out)
"""


def run_worker(threads, *args):
    """The codec in a fresh process with `threads` threads for numba and BLAS."""
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", WORKER, *map(str, args)], env=env, capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("adapt", [False, True])
def test_other_thread_counts_in_other_processes(tmp_path, adapt):
    """Compressed with 1 thread, decompressed with 2 (and compressed with 2: the same bytes)."""
    model = save(random_model(ALPHABET, hidden=16, layers=2, dtype="float32", seed=8, scale=0.3), tmp_path / "m.npz")
    text = tmp_path / "t.txt"
    text.write_bytes(markov_text(20000, ALPHABET, chain_seed=4).encode() + "€".encode())
    flag = "1" if adapt else "0"
    run_worker(1, "compress", model, text, tmp_path / "one.crz", flag)
    run_worker(2, "compress", model, text, tmp_path / "two.crz", flag)
    assert (tmp_path / "one.crz").read_bytes() == (tmp_path / "two.crz").read_bytes()
    run_worker(2, "decompress", model, tmp_path / "one.crz", tmp_path / "back.txt", flag)
    assert (tmp_path / "back.txt").read_bytes() == text.read_bytes()
    in_process = compress(load_model(model), text.read_bytes(), adapt=Adaptation(0.05, 16) if adapt else None)[0]
    assert in_process == (tmp_path / "one.crz").read_bytes()


@pytest.mark.parametrize(
    ("model", "compressed", "adapt"),
    [("model32.npz", "text.crz", None), ("model32.npz", "text.adapt.crz", Adaptation(0.05, 16)),
     ("model64.npz", "text.f64.crz", None)],
)  # fmt: skip
def test_files_compressed_on_another_machine(model, compressed, adapt):
    """Written once by tests/data/codec/make_fixtures.py: a different CPU (CI) must decode them, and encode
    the text to the very same bytes. If this fails after a change to the kernels, the change altered the
    coder's arithmetic: keep the old arithmetic or raise the format version (old files then fail loudly)."""
    loaded = load_model(FIXTURES / model)
    blob = (FIXTURES / compressed).read_bytes()
    original = (FIXTURES / "text.txt").read_bytes()
    assert decompress(loaded, blob, name=compressed)[0] == original
    assert compress(loaded, original, adapt=adapt)[0] == blob
