"""Author attribution: two tiny models trained on two synthetic 'authors', fairness with unshared characters,
paragraphs, the posterior in log space, and the `charrnn attribute` command."""

import json
import re

import numpy as np
import pytest
from tiny_models import assert_user_error, markov_text, random_model, train_tiny
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.errors import CharrnnError
from charrnn.score import Verdict, attribute, score_text, split_paragraphs

runner = CliRunner()
ALPHABET = "abcdefgh \n"


@pytest.fixture(scope="module")
def authors(tmp_path_factory):
    """Two order-1 Markov 'authors' and a small model trained on 20k characters of each."""
    folder = tmp_path_factory.mktemp("authors")
    models = {}
    for name, chain in (("alice", 1), ("bob", 2)):
        models[name] = train_tiny(markov_text(20_000, ALPHABET, chain), folder / f"{name}.npz")
    return models, folder


def fresh_paragraphs(chain, count, seed):
    """New text from an author's chain (not the training text), as `count` paragraphs of 150 characters
    (runs of newlines squeezed to one, and none at the ends, so paragraphs stay whole)."""
    pieces = re.sub("\n+", "\n", markov_text(200 * count, ALPHABET, chain, sample_seed=seed))
    return [pieces[i * 150 : (i + 1) * 150].strip("\n") for i in range(count)]


@pytest.mark.parametrize(("chain", "expected"), [(1, "alice"), (2, "bob")])
def test_picks_the_right_author(authors, chain, expected):
    models, _ = authors
    text = "".join(fresh_paragraphs(chain, 4, seed=7))
    result = attribute(text, models)
    assert result.best == expected
    assert result.whole.posterior[result.names.index(expected)] > 0.99
    bits = dict(zip(result.names, result.whole.bits_per_char, strict=True))
    assert bits[expected] < min(bits.values()) + 1e-12


def test_by_paragraph_verdicts(authors):
    models, _ = authors
    truth = ["alice", "bob", "bob", "alice", "bob", "alice"]
    paragraphs = [fresh_paragraphs(1 if who == "alice" else 2, 1, seed=i)[0] for i, who in enumerate(truth)]
    result = attribute("\n\n".join(paragraphs), models, by_paragraph=True)
    assert [result.names[p.verdict.best] for p in result.paragraphs] == truth
    starts = np.cumsum([1] + [p.count("\n") + 2 for p in paragraphs[:-1]])  # each separator adds 2 lines
    assert [p.line for p in result.paragraphs] == starts.tolist()
    for p in result.paragraphs:  # each paragraph is scored on its own, from a zero state
        expected = score_text(models["alice"], p.text).log_likelihood
        assert abs(p.verdict.log_likelihoods[0] - expected) < 1e-9


def test_characters_outside_a_shared_vocabulary_are_excluded_for_every_model():
    wide = random_model("abcdefghxyz \n", seed=1)
    narrow = random_model("abcdefgh \n", seed=2)
    text = "abc xyz\nfade x"
    result = attribute(text, {"wide": wide, "narrow": narrow})
    assert result.excluded == {"x": 2, "y": 1, "z": 1}
    kept = "abc \nfade "
    assert result.whole.scored == len(kept) - 1
    np.testing.assert_allclose(
        result.whole.log_likelihoods,
        [score_text(wide, kept).log_likelihood, score_text(narrow, kept).log_likelihood],
        atol=1e-12,
    )


def test_posterior_is_computed_in_log_space():
    verdict = Verdict(1000, np.array([-1e6, -1e6 - 5.0, -2e6]))
    np.testing.assert_allclose(verdict.posterior, [1 / (1 + np.exp(-5)), np.exp(-5) / (1 + np.exp(-5)), 0.0])
    assert verdict.best == 0 and abs(verdict.margin_bits - 5 / np.log(2)) < 1e-9


def test_split_paragraphs():
    text = "\n\none\ntwo\n\n  \nthree\n\n\n\nfour\n"
    assert split_paragraphs(text) == [(3, "one\ntwo"), (7, "three"), (11, "four\n")]


def test_too_little_shared_text_is_an_error():
    with pytest.raises(CharrnnError, match="at least 2"):
        attribute("xyz a", {"a": random_model("abc"), "b": random_model("abcxyz")})


# ---- the command ----


def test_cli_json_and_text(authors):
    models, folder = authors
    text = "\n\n".join(fresh_paragraphs(2, 3, seed=5))
    args = ["attribute", "-", "-m", str(folder / "alice.npz"), "-m", str(folder / "bob.npz"), "--by-paragraph"]
    result = runner.invoke(app, [*args, "--json"], input=text)
    assert result.exit_code == 0, result.output
    *paragraphs, out = [json.loads(line) for line in result.stdout.splitlines()]  # JSON lines, summary last
    assert out["kind"] == "attribution" and out["best"] == "bob" and set(out["models"]) == {"alice", "bob"}
    assert {"log_likelihood_nats", "bits_per_char", "posterior"} == set(out["models"]["bob"])
    assert abs(sum(m["posterior"] for m in out["models"].values()) - 1) < 1e-9
    assert [p["kind"] for p in paragraphs] == ["paragraph"] * 3 and [p["best"] for p in paragraphs] == ["bob"] * 3
    plain = runner.invoke(app, args, input=text)
    assert plain.exit_code == 0 and "verdict: bob" in plain.stdout


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty", "twice"])
def test_cli_bad_input(authors, tmp_path, case):
    _, folder = authors
    good = str(folder / "alice.npz")
    (tmp_path / "corrupt.npz").write_bytes(b"garbage")
    text = "" if case == "empty" else "abc abc"
    other = {"missing": str(tmp_path / "nope.npz"), "corrupt": str(tmp_path / "corrupt.npz"),
             "empty": str(folder / "bob.npz")}.get(case, good)  # fmt: skip
    code = 2 if case == "twice" else 1  # the same model twice is a usage mistake
    assert_user_error(runner.invoke(app, ["attribute", "-", "-m", good, "-m", other], input=text), code)


def test_cli_needs_a_model():
    result = runner.invoke(app, ["attribute", "-"], input="abc")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_real_process_scores_stdin(authors):
    """One real process: `charrnn score MODEL -` on piped input, JSON on stdout, nothing on stderr."""
    import subprocess
    import sys
    from pathlib import Path

    _, folder = authors
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "charrnn", "score", str(folder / "alice.npz"), "-", "--json"],
                          input="abc fade\n", capture_output=True, text=True, cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout)["scored"] == 8
