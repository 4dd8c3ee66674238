"""Where every run starts (runstart.py): fresh, resumed and fine-tuned runs, from the library."""

import pytest
from conftest import make_text
from tiny_models import random_model, save

from charrnn.errors import CharrnnError
from charrnn.runstart import prepare_run

ARCH = dict(hidden_size=None, num_layers=None, activation=None, dtype=None)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(make_text(2000, alphabet="abcdefgh\n"))
    return path


def test_fresh_run_takes_the_given_architecture(corpus):
    start = prepare_run([corpus], {**ARCH, "hidden_size": 24}, val_frac=0.0)
    assert start.init_model is None and start.notes == []
    assert start.model_config.hidden_size == 24 and start.model_config.vocab_size == len(start.data.vocab) == 9


def test_resume_keeps_the_checkpoint_architecture_and_says_so(corpus, tmp_path):
    model = save(random_model("abcdefgh\n", hidden=8), tmp_path / "m.npz")
    start = prepare_run([corpus], {**ARCH, "hidden_size": 64}, resume=model, val_frac=0.0)
    assert start.model_config is None and start.init_model is None and start.data.vocab.chars == "\nabcdefgh"
    assert start.notes == ["--hidden 64 ignored: resuming keeps the model's hidden (8)"]


def test_fine_tuning_extends_the_vocabulary_only_when_asked(corpus, tmp_path):
    model = save(random_model("abcdef\n", hidden=8), tmp_path / "m.npz")
    with pytest.raises(CharrnnError, match="not in the model's vocabulary"):
        prepare_run([corpus], ARCH, init_from=model, val_frac=0.0)
    start = prepare_run([corpus], ARCH, init_from=model, extend=True, val_frac=0.0)
    assert start.init_model.vocab.chars == "\nabcdefgh" == start.data.vocab.chars
    assert any(note.startswith("added 2 character(s) to the vocabulary: 'g', 'h'") for note in start.notes)
    skipped = prepare_run([corpus], ARCH, init_from=model, unk="skip", val_frac=0.0)
    assert skipped.init_model.vocab.chars == "\nabcdef" and "not in the vocabulary skipped" in skipped.notes[0]


def test_conflicting_starts_are_refused(corpus, tmp_path):
    model = save(random_model("abcdefgh\n"), tmp_path / "m.npz")
    with pytest.raises(CharrnnError, match="exclude each other"):
        prepare_run([corpus], ARCH, resume=model, init_from=model)
    with pytest.raises(CharrnnError, match="--extend-vocab needs --init-from"):
        prepare_run([corpus], ARCH, extend=True)
