"""Sampling: against the NumPy reference, against the model's own distribution (chi-square), the filters,
seeds, batching, stop strings, and the `charrnn sample` command."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference
from scipy import stats
from tiny_models import assert_user_error, fixed_distribution_model, random_model, save
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.errors import CharrnnError
from charrnn.generate import rng_states, sample

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def reference_run(model, prime, length, seed, num_samples=1, stop="", **options):
    """The reference sampler from the state the prime leaves (prime defaults to a newline)."""
    kind = model.config.activation
    ids = model.vocab.encode(prime or "\n").astype(np.int64)
    layers = reference.forward(model.params, ids[None, :], model.initial_state(1), kind)
    h = np.repeat(np.stack([layer[:, -1] for layer in layers]), num_samples, axis=1)
    states = [[int(v) for v in row] for row in rng_states(seed, num_samples)]
    settings = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "greedy": False, **options}
    out, log_q, log_p, _ = reference.sample_block(
        model.params, h, kind, length, settings["temperature"], settings["top_k"], settings["top_p"],
        settings["greedy"], states, list(model.vocab.encode(stop)),
    )  # fmt: skip
    return [model.vocab.decode(ids) for ids in out], log_q, log_p


SETTINGS = [
    {},
    {"temperature": 0.6},
    {"temperature": 1.7, "top_k": 3},
    {"top_p": 0.7},
    {"temperature": 0.8, "top_k": 4, "top_p": 0.9},
    {"greedy": True},
]


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()) or "plain")
def test_sample_matches_reference(layers, settings):
    """Same ids and log-probabilities as the step-by-step NumPy sampler; blocks of 7 carry the state."""
    model = random_model(layers=layers, seed=layers)
    results = sample(model, 40, prime="abc", num_samples=3, seed=11, block=7, **settings).run()
    texts, log_q, log_p = reference_run(model, "abc", 40, 11, num_samples=3, **settings)
    assert [r.text for r in results] == texts
    np.testing.assert_allclose([r.log_prob_sampling for r in results], log_q, atol=1e-9)
    np.testing.assert_allclose([r.log_prob_model for r in results], log_p, atol=1e-9)
    if settings == {}:  # sampling distribution is the model's
        np.testing.assert_allclose(log_q, log_p, atol=1e-9)


def test_stop_string_matches_reference_and_ends_the_sample():
    model = random_model(seed=4)
    results = sample(model, 300, prime="a", num_samples=4, seed=2, stop="ab", block=5).run()
    texts, _, _ = reference_run(model, "a", 300, 2, num_samples=4, stop="ab")
    assert [r.text for r in results] == texts
    for r in results:
        assert r.stopped == r.text.endswith("ab")
        assert "ab" not in r.text[:-1]  # it ends at the first occurrence
    assert any(r.stopped for r in results)


def test_stop_string_of_unknown_characters_is_an_error():
    with pytest.raises(CharrnnError, match="stop"):
        sample(random_model(), 10, stop="xyz")


def test_frequencies_match_model_distribution():
    """First characters after a fixed prime, 6000 samples in one batch: chi-square against the model's
    distribution from the reference forward pass (and against the tempered one at temperature 0.7)."""
    model = random_model(seed=3, scale=0.9)
    layers = reference.forward(model.params, model.vocab.encode("bad").astype(np.int64)[None], model.initial_state(1),
                               "tanh")  # fmt: skip
    logits = layers[-1][0, -1] @ model.params["Wy"] + model.params["by"]
    for temperature in (1.0, 0.7):
        expected = np.exp(logits / temperature - (logits / temperature).max())
        expected /= expected.sum()
        results = sample(model, 1, prime="bad", num_samples=6000, seed=5, temperature=temperature).run()
        counts = np.bincount(model.vocab.encode("".join(r.text for r in results)), minlength=len(model.vocab))
        assert stats.chisquare(counts, expected * counts.sum()).pvalue > 1e-3


def test_temperature_near_zero_equals_greedy():
    model = random_model(seed=6)
    greedy = sample(model, 60, prime="ab", greedy=True).run()[0]
    cold = sample(model, 60, prime="ab", temperature=1e-7, seed=9).run()[0]
    assert cold.text == greedy.text
    assert sample(model, 60, prime="ab", temperature=1e-320, seed=9).run()[0].text == greedy.text  # 1/T = inf
    assert greedy.log_prob_sampling == 0.0
    assert abs(cold.log_prob_model - greedy.log_prob_model) < 1e-9


PROBS = np.array([0.05, 0.3, 0.04, 0.2, 0.15, 0.06, 0.1, 0.1])  # ranked: 1, 3, 4, 6, 7, 5, 0, 2


@pytest.mark.parametrize("top_k", [1, 3, 5])
def test_top_k_emits_only_the_k_most_likely(top_k):
    model = fixed_distribution_model(np.log(PROBS))
    results = sample(model, 3, num_samples=1500, seed=1, top_k=top_k).run()
    counts = np.bincount(model.vocab.encode("".join(r.text for r in results)), minlength=len(PROBS))
    allowed = [1, 3, 4, 6, 7][:top_k]  # ties (6, 7) go to the lower id
    assert set(np.flatnonzero(counts)) == set(allowed)
    expected = PROBS[allowed] / PROBS[allowed].sum() * counts.sum()
    if top_k > 1:
        assert stats.chisquare(counts[allowed], expected).pvalue > 1e-3


@pytest.mark.parametrize(("top_p", "allowed"), [(0.25, [1]), (0.45, [1, 3]), (0.6, [1, 3, 4]), (0.66, [1, 3, 4, 6]),
                                                (0.9, [1, 3, 4, 6, 7, 5]), (1.0, list(range(8)))])  # fmt: skip
def test_top_p_keeps_the_smallest_set_reaching_p(top_p, allowed):
    model = fixed_distribution_model(np.log(PROBS))
    results = sample(model, 3, num_samples=2000, seed=2, top_p=top_p).run()
    counts = np.bincount(model.vocab.encode("".join(r.text for r in results)), minlength=len(PROBS))
    assert set(np.flatnonzero(counts)) == set(allowed)
    if len(allowed) > 1:
        expected = PROBS[allowed] / PROBS[allowed].sum() * counts.sum()
        assert stats.chisquare(counts[allowed], expected).pvalue > 1e-3


def test_seed_reproducible_and_batch_rows_match_single_runs():
    model = random_model(seed=7)
    first = sample(model, 80, prime="h", seed=123).run()[0]
    assert sample(model, 80, prime="h", seed=123).run()[0] == first
    assert sample(model, 80, prime="h", seed=124).run()[0].text != first.text
    # sample k of a batch draws from the stream of (seed, k): row 0 of a batch is the single run
    batch = sample(model, 80, prime="h", seed=123, num_samples=5).run()
    assert batch[0].text == first.text
    assert len({r.text for r in batch}) == 5


def test_num_samples_has_the_distribution_of_repeated_single_samples():
    """Second characters (after one random step) of 1500 batched samples vs 1500 separate runs."""
    model = random_model(seed=8, scale=0.9)
    batched = [r.text[1] for r in sample(model, 2, prime="c", num_samples=1500, seed=1).run()]
    single = [sample(model, 2, prime="c", seed=10_000 + i).run()[0].text[1] for i in range(1500)]
    V = len(model.vocab)
    table = np.array([np.bincount(model.vocab.encode("".join(x)), minlength=V) for x in (batched, single)])
    table = table[:, table.sum(axis=0) > 0]
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_no_prime_starts_after_a_newline_else_from_the_zero_state():
    model = random_model(seed=9)
    assert sample(model, 30, seed=4).run()[0].text == sample(model, 30, prime="\n", seed=4).run()[0].text
    no_newline = random_model("abcd", seed=9)
    results = sample(no_newline, 30, seed=4, num_samples=2).run()
    states = [[int(v) for v in row] for row in rng_states(4, 2)]
    h = no_newline.initial_state(2)
    out, _, _, _ = reference.sample_block(no_newline.params, h, "tanh", 30, 1.0, 0, 1.0, False, states, [])
    assert [r.text for r in results] == [no_newline.vocab.decode(ids) for ids in out]


def test_float32_model_and_streamed_blocks():
    model = random_model(dtype="float32", hidden=32, seed=2)
    sampler = sample(model, 50, prime="ab", seed=3, block=16)
    blocks = [pieces[0] for pieces in sampler]
    assert [len(b) for b in blocks] == [16, 16, 16, 2]
    assert "".join(blocks) == sampler.results[0].text
    assert len(sampler.results[0].text) == 50


@pytest.mark.parametrize(
    ("options", "message"),
    [({"temperature": 0.0}, "temperature"), ({"temperature": -1.0}, "temperature"),
     ({"temperature": float("nan")}, "temperature"), ({"top_p": 0.0}, "top-p"), ({"top_p": 1.01}, "top-p"),
     ({"top_k": -1}, "top-k"), ({"length": -1}, "length"), ({"num_samples": 0}, "num-samples")],
)  # fmt: skip
def test_bad_options_raise(options, message):
    settings = {"length": 10, **options}
    with pytest.raises(CharrnnError, match=message):
        sample(random_model(), **settings)


def test_prime_unknown_characters_follow_the_policy():
    model = random_model()
    with pytest.raises(CharrnnError, match="'z'"):
        sample(model, 5, prime="abz")
    skipped = sample(model, 20, prime="abz", unk="skip", seed=1)
    assert skipped.unknown.counts == {"z": (1, 2)}
    assert skipped.run()[0].text == sample(model, 20, prime="ab", seed=1).run()[0].text
    assert (
        sample(model, 20, prime="abz", unk="c", seed=1).run()[0].text
        == sample(model, 20, prime="abc", seed=1).run()[0].text
    )


# ---- the command ----


@pytest.fixture
def model_file(tmp_path):
    return save(random_model(hidden=16, seed=5, dtype="float32"), tmp_path / "m.npz")


def test_cli_streams_prime_then_text(model_file):
    result = runner.invoke(app, ["sample", str(model_file), "-n", "40", "--prime", "abc", "--seed", "3"])
    assert result.exit_code == 0, result.output
    expected = sample(random_model(hidden=16, seed=5, dtype="float32"), 40, prime="abc", seed=3).run()[0].text
    assert result.stdout == "abc" + expected + ("" if expected.endswith("\n") else "\n")


def test_cli_json_one_object_per_sample(model_file):
    result = runner.invoke(app, ["sample", str(model_file), "-n", "25", "--num-samples", "3", "--json", "--seed", "1",
                                 "--top-k", "4", "--temperature", "0.9"])  # fmt: skip
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["sample"] for o in objects] == [0, 1, 2]
    for o in objects:
        assert {"kind", "text", "sampling_log_likelihood_nats", "log_likelihood_nats", "bits_per_char", "seed",
                "prime", "stopped"} <= set(o)  # fmt: skip
        assert len(o["text"]) == 25 and o["seed"] == 1 and o["kind"] == "sample"
        assert o["log_likelihood_nats"] <= 0


def test_cli_same_seed_same_bytes(model_file):
    args = ["sample", str(model_file), "-n", "60", "--seed", "7", "--num-samples", "2"]
    assert runner.invoke(app, args).stdout == runner.invoke(app, args).stdout


@pytest.mark.parametrize(
    "args",
    [(["--temperature", "0"], 2), (["--temperature", "-2"], 2), (["--temperature", "nan"], 2), (["--top-p", "0"], 2),
     (["--top-p", "1.5"], 2), (["--top-k", "-1"], 2), (["-n", "-5"], 2), (["--prime", "xyz"], 1),
     (["--unk", "bogus"], 2), (["--prime", "a", "--prime-file", "nope.txt"], 2), (["--prime-file", "missing.txt"], 1),
     (["--stop", "Q"], 1)],
)  # fmt: skip
def test_cli_bad_input_is_one_line_error(model_file, args):
    """Option values out of range are usage mistakes (exit 2); what depends on files or the model, exit 1."""
    args, code = args
    result = runner.invoke(app, ["sample", str(model_file), *args])
    assert_user_error(result, code)


def test_cli_missing_or_corrupt_model(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file")
    for path in (tmp_path / "missing.npz", corrupt):
        assert_user_error(runner.invoke(app, ["sample", str(path)]))


def test_real_process_piped_into_head(model_file):
    """`charrnn sample ... | head` ends quietly: no traceback when the reader goes away."""
    command = [sys.executable, "-m", "charrnn", "sample", str(model_file), "-n", "200000", "--seed", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                               env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip
    head = process.stdout.read(100)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0
    assert len(head) == 100 and "Traceback" not in stderr and stderr == ""
