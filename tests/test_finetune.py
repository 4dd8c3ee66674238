"""Fine-tuning (--init-from) with the unknown-character policy or an extended vocabulary (--extend-vocab)."""

import json

import numpy as np
import pytest
import reference
from conftest import make_text, random_model
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.finetune import NEW_CHAR_PRIOR, extend_vocab
from charrnn.model import load_checkpoint, load_model

runner = CliRunner()
SMALL = ["--batch-size", "4", "--seq-len", "8", "--sample-every", "0", "-q"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def base_model(tmp_path):
    (tmp_path / "old.txt").write_text(make_text(3000, alphabet="abcde \n"))
    result = invoke("train", tmp_path / "old.txt", "-o", tmp_path / "base.npz", "--hidden", "12", "--steps", "6",
                    *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp_path / "base.npz"


@pytest.fixture
def new_corpus(tmp_path):
    path = tmp_path / "new.txt"
    path.write_text(make_text(3000, seed=5, alphabet="abcde \n") + "ÄBa" + make_text(200, seed=6, alphabet="abc"))
    return path


def test_fine_tuning_without_extension_follows_the_unk_policy(tmp_path, base_model, new_corpus):
    result = invoke("train", new_corpus, "--init-from", base_model, "-o", tmp_path / "ft.npz", "--steps", "3", *SMALL)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {new_corpus}: 2 character(s) not in the model's vocabulary: 'Ä' x1 (first at 3000), 'B' x1 "
        "(first at 3001) (use --unk skip, --unk map:<char> or --extend-vocab)"
    )
    result = invoke("train", new_corpus, "--init-from", base_model, "-o", tmp_path / "ft.npz", "--steps", "3",
                    "--unk", "skip", "--hidden", "64", "--lr", "1e-6", *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--hidden 64 ignored: fine-tuning keeps the model's hidden (12)" in result.stderr
    assert "2 character(s) not in the vocabulary skipped" in result.stderr
    base, tuned = load_model(base_model), load_checkpoint(tmp_path / "ft.npz")
    assert tuned[0].vocab == base.vocab and tuned[0].config == base.config
    assert tuned[1]["step"] == 3  # a new run, counted from 0
    assert np.abs(tuned[0].flat - base.flat).max() < 1e-4  # started from the trained weights, not re-initialised


def test_fine_tuning_with_an_extended_vocabulary(tmp_path, base_model, new_corpus):
    result = invoke("train", new_corpus, "--init-from", base_model, "--extend-vocab", "-o", tmp_path / "ft.npz",
                    "--steps", "3", *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "added 2 character(s) to the vocabulary: 'B', 'Ä'" in result.stderr
    base, tuned = load_model(base_model), load_model(tmp_path / "ft.npz")
    assert tuned.vocab.chars == "".join(sorted(base.vocab.chars + "ÄB"))
    assert tuned.params["Wx"].shape == (len(base.vocab) + 2, 12)
    info = json.loads(invoke("info", tmp_path / "ft.npz", "--json").stdout)
    assert info["vocab_size"] == len(base.vocab) + 2
    # the fine-tuned model resumes on the same corpus (its vocabulary is the checkpoint's, not the corpus's)
    result = invoke("train", new_corpus, "--resume", tmp_path / "ft.npz", "-o", tmp_path / "ft.npz", "--steps", "5",
                    *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output


def test_extend_vocab_needs_init_from(tmp_path, new_corpus):
    result = invoke("train", new_corpus, "--extend-vocab", *SMALL)
    assert result.exit_code == 2 and "--extend-vocab needs --init-from" in result.stderr


def log_probs(model, ids):
    """(T, V) log-probabilities of the next character after each of `ids`, by the NumPy reference."""
    params = {name: value.astype(np.float64) for name, value in model.params.items()}
    h0 = np.zeros((model.config.num_layers, 1, model.config.hidden_size))
    top = reference.forward(params, np.asarray(ids)[None, :], h0, model.config.activation)[-1][0]
    logits = top @ params["Wy"] + params["by"]
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


@pytest.mark.parametrize("layers", [1, 2])
def test_extension_keeps_old_predictions_up_to_renormalisation(layers):
    """At step 0, the distribution over the old characters, renormalised, is exactly the old model's:
    the new characters' logits are the same constant at every position (zero Wy columns)."""
    old = random_model(vocab_size=5, hidden=6, layers=layers, seed=layers)  # characters a..e
    new = extend_vocab(old, "b _z", seed=0)  # " ", "_" sort before "a"; "z" after: every old id shifts
    assert new.vocab.chars == " _abcdez"
    text = "abcaeedbca"
    before = log_probs(old, old.vocab.encode(text))
    after = log_probs(new, new.vocab.encode(text))
    kept = [new.vocab.index[c] for c in old.vocab.chars]
    renormalised = after[:, kept] - np.logaddexp.reduce(after[:, kept], axis=1, keepdims=True)
    np.testing.assert_allclose(renormalised, before, atol=1e-12)
    new_mass = np.exp(after[:, [0, 1, 7]]).sum(axis=1)
    assert (new_mass > 0).all() and (new_mass < 3 * NEW_CHAR_PRIOR * np.exp(np.ptp(old.params["by"]) + 6)).all()
    for name in ("Wu", "Wh", "bh"):
        assert np.array_equal(new.params[name], old.params[name])
    assert np.array_equal(new.params["Wx"][kept], old.params["Wx"])
    assert not new.params["Wy"][:, [0, 1, 7]].any()
