"""charrnn.codec: the compressed size is the model's surprisal, any bytes round-trip, and a damaged file or
another model is an error, never wrong output."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import markov_text, random_model, train_tiny

from charrnn.codec import Adaptation, compress, decompress, fingerprint, read_header
from charrnn.codec.coder import BLOCK
from charrnn.errors import CharrnnError
from charrnn.score import score_text

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
ALPHABET = "abcdefgh \n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A float64 model trained on a Markov chain's text (so it predicts well), and a float32 copy."""
    text = markov_text(6000, ALPHABET, chain_seed=3)
    model = train_tiny(text, tmp_path_factory.mktemp("m") / "m.npz", hidden=24, steps=200)
    return model


def first_char_bits(model, char):
    """The coder predicts the first character from the zero state (softmax(by)); score does not score it."""
    by = model.params["by"].astype(np.float64)
    log_p = by - by.max() - np.log(np.exp(by - by.max()).sum())
    return -log_p[model.vocab.index[char]] / math.log(2)


@pytest.mark.parametrize("kind", ["float64-tanh", "float32-tanh", "float32-relu-2layers", "random"])
@pytest.mark.parametrize("seed", [1, 2])
def test_size_is_the_scored_surprisal(trained, kind, seed):
    """Payload = score's total bits / 8 (+ the first character, which score only conditions on) within
    0.1% + 2 bytes of flush; the header's size is counted apart. (Random weights are kept small: a random
    RNN with large weights is chaotic, and the rounding differences between score's fastmath kernels and the
    coder's strict ones grow along the text until the two see different states; trained models contract.)"""
    if kind == "random":
        model = random_model(ALPHABET, hidden=16, layers=2, seed=seed, scale=0.2)
    elif kind == "float32-relu-2layers":
        model = random_model(ALPHABET, hidden=16, layers=2, activation="relu", dtype="float32", seed=seed, scale=0.15)
    else:
        model = trained
        if kind == "float32-tanh":
            model = type(trained)(trained.config.__class__(**{**trained.config.__dict__, "dtype": "float32"}),
                                  trained.vocab, trained.flat.astype(np.float32))  # fmt: skip
    text = markov_text(3000 * seed, ALPHABET, chain_seed=3, sample_seed=seed)
    blob, stats = compress(model, text.encode())
    bits = -score_text(model, text).log_likelihood / math.log(2) + first_char_bits(model, text[0])
    payload = stats.compressed_bytes - stats.header_bytes
    assert abs(payload - bits / 8) <= 0.001 * bits / 8 + 2, (payload, bits / 8)
    assert stats.header_bytes == len(read_header(blob).pack())
    assert decompress(model, blob)[0] == text.encode()


def test_size_across_blocks_and_long_text(trained):
    text = markov_text(BLOCK + 5000, ALPHABET, chain_seed=3, sample_seed=9)
    blob, stats = compress(trained, text.encode())
    bits = -score_text(trained, text).log_likelihood / math.log(2) + first_char_bits(trained, text[0])
    assert abs(stats.compressed_bytes - stats.header_bytes - bits / 8) <= 0.001 * bits / 8 + 2
    assert decompress(trained, blob)[0] == text.encode()


SMALL = random_model(ALPHABET + "\r", hidden=8, dtype="float32", seed=3)
NO_CR = random_model(ALPHABET, hidden=8, dtype="float32", seed=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(ALPHABET + "\r") | st.characters(exclude_categories=("Cs",)), max_size=300))
def test_any_unicode_round_trips(text):
    data = text.encode("utf-8")
    for model in (SMALL, NO_CR):
        blob, _ = compress(model, data)
        assert decompress(model, blob)[0] == data


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_round_trip(data):
    blob, stats = compress(NO_CR, data)
    assert decompress(NO_CR, blob)[0] == data
    assert stats.original_bytes == len(data)


@pytest.mark.parametrize(
    "text",
    ["", "a", "\n", "é", "abc\r\nde\r\n", "abc\r\nde\n", "\r\r\n\r", "ab\x00cd", "日本語のテキスト" * 50,
     "🙂" * 1000, "".join(chr(c) for c in range(0x20, 0x800)), "a\udcff".encode("utf-8", "surrogatepass").decode(
         "utf-8", "surrogateescape")],
    ids=["empty", "one", "newline", "e-acute", "crlf", "mixed-eol", "lone-cr", "nul", "cjk", "emoji", "range",
         "surrogate-bytes"],
)  # fmt: skip
def test_edge_texts_round_trip(text):
    data = text.encode("utf-8", "surrogateescape")
    blob, stats = compress(NO_CR, data)
    assert decompress(NO_CR, blob)[0] == data
    assert read_header(blob).crlf == (text in ("abc\r\nde\r\n", "\r\r\n\r"))  # LF only where CRLF comes back


def test_crlf_costs_nothing_for_a_model_without_cr():
    text = markov_text(4000, ALPHABET, chain_seed=3, sample_seed=2)
    lf, _ = compress(NO_CR, text.encode())
    crlf, stats = compress(NO_CR, text.replace("\n", "\r\n").encode())
    assert len(crlf) == len(lf) and stats.escaped == 0


def test_repeated_unknown_characters_get_cheap():
    """The first escape costs ~24 bits and a new code point ~20; later ones learn their frequency."""
    base = markov_text(4000, ALPHABET, chain_seed=3, sample_seed=3)
    once, _ = compress(NO_CR, (base + "€").encode())
    often, stats = compress(NO_CR, "€".join(base[i : i + 40] for i in range(0, 4000, 40)).encode())
    plain, _ = compress(NO_CR, base.encode())
    assert len(once) - len(plain) <= 7
    assert stats.escaped == 99 and (len(often) - len(plain)) * 8 / 99 < 10  # bits per later escape


@pytest.mark.skipif(not CORPORA.is_dir(), reason="the shared corpora are not here")
def test_benchmark_files_round_trip(tmp_path):
    """The benchmark's texts (their last 10% and the rest) with a model of one of them: CRLF (anna.txt) and
    characters outside the vocabulary included."""
    shakespeare = CORPORA.joinpath("tinyshakespeare.txt").read_text(encoding="utf-8")
    model = train_tiny(shakespeare[:20000], tmp_path / "m.npz", hidden=16, steps=30)
    for name in ("tinyshakespeare.txt", "anna.txt", "names.txt"):
        data = CORPORA.joinpath(name).read_bytes()
        blob, stats = compress(model, data)
        assert decompress(model, blob)[0] == data, name
        assert stats.bits_per_byte < 8


# ---- adaptive coding ----


def test_adaptive_coding_learns_and_round_trips(trained):
    """A text from another Markov chain than the model's: the adaptive coder learns it as it goes."""
    text = markov_text(8000, ALPHABET, chain_seed=8, sample_seed=1)
    before = trained.flat.copy()
    static, _ = compress(trained, text.encode())
    blob, _ = compress(trained, text.encode(), adapt=Adaptation(0.1, 16))
    assert len(blob) < 0.9 * len(static), (len(blob), len(static))
    assert read_header(blob).adapt == Adaptation(0.1, 16)
    assert decompress(trained, blob)[0] == text.encode()
    assert np.array_equal(trained.flat, before)  # the caller's model is not the one that learns


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.sampled_from(ALPHABET) | st.characters(exclude_categories=("Cs",)), max_size=200),
       st.integers(1, 9), st.sampled_from([0.01, 0.3, 3.0]))  # fmt: skip
def test_adaptive_round_trips(text, window, lr):
    model = random_model(ALPHABET, hidden=8, layers=2, dtype="float32", seed=6)
    blob, _ = compress(model, text.encode(), adapt=Adaptation(lr, window))
    assert decompress(model, blob)[0] == text.encode()


@pytest.mark.parametrize(("lr", "window"), [(0.0, 32), (-1.0, 32), (float("nan"), 32), (0.1, 0), (0.1, 10**6)])
def test_bad_adaptation_settings(lr, window):
    with pytest.raises(CharrnnError, match="adaptive"):
        Adaptation(lr, window)


# ---- damage and the wrong model ----


@pytest.fixture(scope="module")
def sample():
    text = markov_text(3000, ALPHABET, chain_seed=3, sample_seed=5) + "€ü\r\n"
    data = text.encode()
    return data, compress(SMALL, data)[0]


def test_another_model_is_refused(sample):
    _, blob = sample
    other = random_model(ALPHABET + "\r", hidden=8, dtype="float32", seed=99)
    with pytest.raises(CharrnnError, match="compressed with another model") as error:
        decompress(other, blob, name="x.crz")
    assert fingerprint(other).hex() in str(error.value) and "\n" not in str(error.value)
    tweaked = random_model(ALPHABET + "\r", hidden=8, dtype="float32", seed=3)
    tweaked.flat[17] = np.nextafter(tweaked.flat[17], np.float32(1))  # one weight, one ulp
    with pytest.raises(CharrnnError, match="another model"):
        decompress(tweaked, blob)


def test_every_single_byte_damage_is_caught(sample):
    """Flip each byte of a file (header and payload) in turn: an error every time, never other bytes."""
    data, blob = sample
    for position in range(len(blob)):
        damaged = bytearray(blob)
        damaged[position] ^= 0x20
        try:
            out = decompress(SMALL, bytes(damaged))[0]
        except CharrnnError as error:
            assert "\n" not in str(error)
            continue
        assert out == data, position  # a flip may land in the final interval's slack: the same text, not a wrong one


def test_truncation_and_extension_are_caught(sample):
    data, blob = sample
    for length in range(len(blob)):
        with pytest.raises(CharrnnError, match="truncated|corrupt|empty"):
            decompress(SMALL, blob[:length])
    for extra in (b"\0", b"xyz", blob):
        with pytest.raises(CharrnnError, match="corrupt"):
            decompress(SMALL, blob + extra)


def test_not_a_compressed_file_and_other_versions(sample):
    _, blob = sample
    with pytest.raises(CharrnnError, match="not a charrnn compressed file"):
        decompress(SMALL, b"hello world, plain text")
    with pytest.raises(CharrnnError, match="version 7 is not supported"):
        decompress(SMALL, blob[:4] + b"\x07" + blob[5:])


def test_flush_to_zero_is_refused(monkeypatch):
    import charrnn.codec.api as api

    class Flushing:  # numpy as a process sees it whose FPU flushes subnormal numbers to zero
        @staticmethod
        def float32(value):
            return np.float32(0.0) if abs(value) < 1e-37 else np.float32(value)

    monkeypatch.setattr(api, "np", Flushing)
    with pytest.raises(CharrnnError, match="flushes subnormal numbers"):
        compress(SMALL, b"abc")
