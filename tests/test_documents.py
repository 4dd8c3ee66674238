"""Documents mode (charrnn/documents.py, charrnn/docmodel.py): splitting, whole-document validation, the
packed layout, the end symbol in vocabulary and checkpoint, training, resuming, sampling, scoring."""

import json

import numpy as np
import pytest
from conftest import random_model

from charrnn.batch import score_sequences
from charrnn.docmodel import (
    DocumentsModel,
    KnownDocuments,
    attribute_documents,
    load_documents_model,
    sample_documents,
    score_documents,
)
from charrnn.documents import (
    DocumentBatches,
    document_hashes,
    parse_split,
    prepare_documents,
    split_documents,
    with_end,
)
from charrnn.errors import CharrnnError
from charrnn.model import Model, ModelConfig, load_checkpoint, save_checkpoint
from charrnn.train import TrainConfig, train
from charrnn.vocab import END_CODEPOINT, Vocab
from charrnn.workspace import Workspace


def make_names(count: int, seed: int = 0) -> list[str]:
    """Names from a small random order-1 chain over 8 letters: 2-9 letters each, some repeated."""
    rng = np.random.default_rng(seed)
    letters = "abcdefgh"
    table = rng.dirichlet(np.full(8, 0.4), size=8)
    names = []
    for _ in range(count):
        state, name = int(rng.integers(8)), []
        for _ in range(int(rng.integers(2, 10))):
            name.append(letters[state])
            state = int(rng.choice(8, p=table[state]))
        names.append("".join(name))
    return names


@pytest.fixture
def names_file(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("\n".join(make_names(600)) + "\n", encoding="utf-8")
    return path


# ---- splitting and validation ----


def test_split_modes():
    assert split_documents("emma\n\n  olivia \nava\n", "lines") == (["emma", "olivia", "ava"], 1)
    poems = "a rose\nis red\n\n \n\nthe sky\n\nis blue\n"
    assert split_documents(poems, "blank-lines") == (["a rose\nis red", "the sky", "is blue"], 0)
    assert split_documents("one\n%\ntwo\n%\n\n%\nthree", "\\n%\\n") == (["one", "two", "three"], 1)
    assert parse_split("\\t") == "\t"
    with pytest.raises(CharrnnError, match="non-empty"):
        parse_split("")


def test_validation_holds_out_whole_documents_seeded(names_file):
    texts, _ = split_documents(names_file.read_text(), "lines")
    a = prepare_documents([names_file], "lines", val_docs=50, seed=3)
    b = prepare_documents([names_file], "lines", val_docs=50, seed=3)
    c = prepare_documents([names_file], "lines", val_docs=50, seed=4)
    assert len(a.val) == 50 and len(a.train) == len(texts) - 50
    assert a.val_texts == b.val_texts != c.val_texts
    assert sorted(a.train_texts + a.val_texts) == sorted(texts)  # whole documents, none lost or cut
    assert [a.vocab.decode(ids) for ids in a.val] == a.val_texts
    assert len(prepare_documents([names_file], "lines", val_frac=0.1).val) == 60
    assert a.vocab.has_end and "\n" not in a.vocab and a.vocab.end_id == len(a.vocab) - 1
    with pytest.raises(CharrnnError, match="--val-docs must be in"):
        prepare_documents([names_file], "lines", val_docs=600)


def test_validation_file_and_unknown_characters(tmp_path, names_file):
    val = tmp_path / "val.txt"
    val.write_text("abc\nhead\n", encoding="utf-8")
    corpus = prepare_documents([names_file], "lines", val_file=val)
    assert corpus.val_texts == ["abc", "head"] and len(corpus.train) == 600
    with pytest.raises(CharrnnError, match="not in the model's vocabulary: 'h'.*first in the document"):
        prepare_documents([names_file], "lines", vocab=Vocab("abcdefg", end=True))


# ---- the packed layout ----


def unpack(layout, end):
    """The documents found in an epoch's layout, by reading from every reset with weight 1."""
    x, y, weights, resets = layout
    found = []
    for b, t in zip(*np.nonzero((resets == 1) & (weights == 1)), strict=True):
        assert x[b, t] == end
        doc = []
        while y[b, t] != end:
            doc.append(int(y[b, t]))
            t += 1
            assert weights[b, t] == 1 and resets[b, t] == 0 and x[b, t] == doc[-1]
        found.append(tuple(doc))
    return found


@pytest.mark.parametrize("batch_size, seq_len", [(4, 8), (3, 5), (1, 64)])
def test_every_epoch_holds_every_document_once(batch_size, seq_len):
    rng = np.random.default_rng(1)
    docs = [rng.integers(0, 5, n) for n in rng.integers(0, 12, 57)]
    batches = DocumentBatches(docs, 5, batch_size, seq_len, seed=2)
    orders = []
    for epoch in range(3):
        layout = batches.layout(epoch)
        assert layout[0].shape == (batch_size, batches.chunks_per_epoch * seq_len)
        found = unpack(layout, 5)
        assert sorted(found) == sorted(tuple(d.tolist()) for d in docs)
        assert layout[2].sum() == batches.positions == sum(d.size + 1 for d in docs)
        orders.append(found)
        chunks = [batches.chunk(i, epoch) for i in range(batches.chunks_per_epoch)]
        for whole, part in zip(layout, zip(*chunks, strict=True), strict=True):
            np.testing.assert_array_equal(whole, np.concatenate(part, axis=1))
    assert orders[0] != orders[1]  # reshuffled every epoch
    assert unpack(DocumentBatches(docs, 5, batch_size, seq_len, seed=2).layout(1), 5) == orders[1]  # seeded


def test_one_chunk_epoch_loss_equals_the_documents_scored_alone():
    """The training loss of an epoch in one chunk (packed rows, padding, resets) equals scoring every
    document alone from a zero state (batch.score_sequences): float64, 1e-10."""
    model = random_model(6, 7, 2, "tanh", "float64", seed=3)
    rng = np.random.default_rng(4)
    docs = [rng.integers(0, 5, n) for n in rng.integers(0, 9, 23)]
    batches = DocumentBatches(docs, 5, 4, 64, seed=0)
    assert batches.chunks_per_epoch == 1
    x, y, weights, resets = batches.chunk(0, 0)
    junk_state = rng.standard_normal((2, 4, 7))  # every row starts with a reset: the state is ignored
    loss, _ = Workspace(model).loss(x, y, junk_state, weights, resets)
    alone = score_sequences(model, [with_end(d, 5) for d in docs])
    assert abs(loss * float(weights.sum()) + sum(lp.sum() for lp in alone)) < 1e-10


# ---- the end symbol: vocabulary and checkpoint ----


def test_end_symbol_in_the_vocabulary():
    vocab = Vocab("abc", end=True)
    assert len(vocab) == 4 and vocab.end_id == 3 and vocab != Vocab("abc") and vocab == Vocab("abc").with_end()
    assert vocab.codepoints().tolist() == [97, 98, 99, END_CODEPOINT]
    assert Vocab.from_codepoints(vocab.codepoints()) == vocab
    assert vocab.decode([0, 3, 1]) == "ab" and vocab.name(3) == "<end>"
    with pytest.raises(CharrnnError, match="not a Unicode code point"):
        Vocab.from_codepoints(np.array([97, END_CODEPOINT + 1]))


def test_checkpoint_versions(tmp_path):
    """A documents model is written as version 2, anything else still as version 1 (what an older charrnn
    reads); both load; a version this charrnn does not know, or an end symbol in a version 1 file, is one
    clear error."""
    stream = Model.initialize(ModelConfig(3, 4, 1), Vocab("abc"), np.random.default_rng(0))
    docs = Model.initialize(ModelConfig(4, 4, 1), Vocab("abc", end=True), np.random.default_rng(0))
    for name, model, version in (("s.npz", stream, 1), ("d.npz", docs, 2)):
        save_checkpoint(tmp_path / name, model, {}, {})
        loaded, meta, _ = load_checkpoint(tmp_path / name)
        assert meta["version"] == version and loaded.vocab == model.vocab
    archive = dict(np.load(tmp_path / "d.npz"))
    for version, message in ((3, "version 3 is not supported"), (1, "invalid code point .1114112.")):
        meta = json.loads(str(archive["meta"]))
        np.savez(tmp_path / "bad.npz", **{**archive, "meta": np.array(json.dumps({**meta, "version": version}))})
        with pytest.raises(CharrnnError, match=message):
            load_checkpoint(tmp_path / "bad.npz")


# ---- training, resuming ----


def train_documents(path, corpus, steps, resume=None, seed=0, should_stop=lambda: False):
    config = TrainConfig(batch_size=8, seq_len=16, steps=steps, eval_every=20, lr=1e-2, threads=1, seed=seed,
                         dropout=0.1)  # fmt: skip
    model_config = ModelConfig(len(corpus.vocab), 16, 1, "tanh", "float64")
    return train(model_config, config, corpus.vocab, corpus.stream("train"), corpus.stream("val"), path,
                 resume=resume, progress=False, documents=corpus, should_stop=should_stop)  # fmt: skip


def test_training_on_documents_learns_and_resumes_bit_exactly(tmp_path, names_file):
    corpus = prepare_documents([names_file], "lines", val_docs=60, seed=0)
    straight = train_documents(tmp_path / "a.npz", corpus, 60)
    assert straight.state.epoch >= 1  # crossed an epoch boundary (reshuffle)
    records = [json.loads(line) for line in (tmp_path / "a.metrics.jsonl").read_text().splitlines()]
    assert records[-1]["val_nats_per_char"] < min(records[0]["val_nats_per_char"], np.log(len(corpus.vocab)) - 0.3)
    assert records[-1]["val_nats_per_document"] > records[-1]["val_nats_per_char"]
    calls = iter(range(10**6))  # interrupted after 37 steps (mid-epoch), resumed with the same budget
    assert train_documents(tmp_path / "b.npz", corpus, 60, should_stop=lambda: next(calls) >= 37).state.step == 37
    resumed = train_documents(tmp_path / "b.npz", corpus, 60, resume=tmp_path / "b.npz")
    np.testing.assert_array_equal(straight.model.flat, resumed.model.flat)
    model, meta, arrays = load_checkpoint(tmp_path / "a.best.npz")
    assert meta["version"] == 2 and meta["documents"]["split"] == "lines"
    assert np.array_equal(arrays["documents.val"], document_hashes(corpus.val_texts))


# ---- sampling, scoring, attribution ----


@pytest.fixture(scope="module")
def doc_model(tmp_path_factory):
    """A small trained documents model (its checkpoint keeps the documents' hashes)."""
    path = tmp_path_factory.mktemp("docs") / "names.txt"
    path.write_text("\n".join(make_names(600, seed=5)) + "\n", encoding="utf-8")
    corpus = prepare_documents([path], "lines", val_docs=60, seed=0)
    train_documents(path.with_suffix(".npz"), corpus, 200)
    return load_documents_model(path.with_suffix(".npz")), corpus


def test_sampling_gives_whole_documents(doc_model):
    documents, corpus = doc_model
    samples = list(sample_documents(documents, 40, 30, seed=7))
    assert len(samples) == 40 and all(s.complete and s.text and "\n" not in s.text for s in samples)
    assert [s.text for s in sample_documents(documents, 40, 30, seed=7)] == [s.text for s in samples]
    statuses = {s.status for s in samples}
    assert "in-train" in statuses  # a trained model repeats common names
    for s in samples:
        want = "in-train" if s.text in corpus.train_texts else "in-validation" if s.text in corpus.val_texts else "new"
        assert s.status == want
    primed = list(sample_documents(documents, 5, 30, prime="ab", seed=1))
    assert all(s.text.startswith("ab") for s in primed)
    capped = list(sample_documents(documents, 20, 2, seed=3))
    assert all(len(s.text) <= 2 for s in capped) and not all(s.complete for s in capped)


def test_unique_and_novel(doc_model):
    documents, corpus = doc_model
    unique = [s.text for s in sample_documents(documents, 30, 30, seed=2, unique=True)]
    assert len(set(unique)) == 30
    novel = list(sample_documents(documents, 30, 30, seed=2, novel=True))
    assert all(s.status == "new" and s.text not in corpus.train_texts + corpus.val_texts for s in novel)
    with pytest.raises(CharrnnError, match="--novel needs"):
        next(sample_documents(DocumentsModel(documents.model, "lines", None, None), 1, 5, novel=True))


def test_known_documents():
    known = KnownDocuments(document_hashes(["emma", "ava"]), document_hashes(["olivia"]))
    assert [known.status(t) for t in ("emma", "olivia", "mia")] == ["in-train", "in-validation", "new"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_documents_score_does_not_depend_on_its_neighbours(dtype):
    model = random_model(6, 8, 2, "tanh", dtype, seed=8)
    model = Model(model.config, Vocab("abcde", end=True), model.flat)
    rng = np.random.default_rng(9)
    texts = ["".join(rng.choice(list("abcde"), n)) for n in rng.integers(1, 30, 300)]
    together, _ = score_documents(model, texts)
    for i in (0, 17, 299):
        alone, _ = score_documents(model, [texts[i]])
        tolerance = 1e-12 if dtype == "float64" else 1e-5
        assert abs(alone[0].log_likelihood - together[i].log_likelihood) <= tolerance * abs(alone[0].log_likelihood)
        assert together[i].predictions == len(texts[i]) + 1


def test_attribution_gives_a_verdict_per_document(doc_model):
    documents, corpus = doc_model
    other = Model(documents.model.config, documents.model.vocab, documents.model.flat * 0.1)  # a weak model
    result = attribute_documents(corpus.val_texts[:20] + ["abzz"], {"trained": documents.model, "weak": other})
    report = result.to_dict()
    assert len(report["documents"]) == 21 and report["best"] == "trained"
    assert report["documents_won"]["trained"] >= 15 and report["excluded"] == {"z": 2}
    with pytest.raises(CharrnnError, match="not a documents model"):
        attribute_documents(["ab"], {"stream": random_model(3, 4, 1, "tanh", "float64")})


def test_readme_documents_defaults_match_the_code():
    """The README's documents-mode defaults table says what `with_document_defaults` does."""
    from pathlib import Path

    from charrnn.documents import DEFAULT_EPOCHS, MODEL_DEFAULTS, TRAIN_DEFAULTS

    readme = (Path(__file__).resolve().parents[1] / "docs" / "documents.md").read_text(encoding="utf-8")
    rows = readme.split("| option | stream default | `--documents` default | why |")[1].split("\n\n")[0]
    cells = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in rows.splitlines()[2:]}
    assert cells["`--hidden`, `--layers`"] == f"{MODEL_DEFAULTS['hidden_size']}, {MODEL_DEFAULTS['num_layers']}"
    assert cells["`--batch-size` x `--seq-len`"] == f"{TRAIN_DEFAULTS['batch_size']} x {TRAIN_DEFAULTS['seq_len']}"
    assert float(cells["`--lr`"]) == TRAIN_DEFAULTS["lr"] and float(cells["`--dropout`"]) == TRAIN_DEFAULTS["dropout"]
    assert int(cells["`--epochs`"]) == DEFAULT_EPOCHS
