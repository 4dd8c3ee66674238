"""Write the committed compressed files that tests/test_cli_codec.py decompresses on every machine CI runs on.

Run once (it refuses to overwrite): `python tests/data/codec/make_fixtures.py`. The files are the proof that
a file compressed here decompresses on another CPU: regenerating them would hide exactly the change the
test exists to catch (then the format version must go up instead).
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for tiny_models

from tiny_models import markov_text  # noqa: E402

from charrnn.codec import Adaptation, compress  # noqa: E402
from charrnn.model import ModelConfig, save_checkpoint  # noqa: E402
from charrnn.train import TrainConfig, train  # noqa: E402
from charrnn.vocab import Vocab  # noqa: E402

ALPHABET = "abcdefgh ,.\n"


def text() -> bytes:
    """Markov text, CRLF line ends, and characters outside the models' vocabulary (accents, CJK, emoji)."""
    body = markov_text(5000, ALPHABET, chain_seed=11)
    body = body[:1000] + "café naïve 日本語 🙂" + body[1000:3000] + "🙂 encore 🙂" + body[3000:]
    return body.replace("\n", "\r\n").encode("utf-8")


def trained(config: ModelConfig, vocab: Vocab, path: Path):
    ids = vocab.encode(markov_text(8000, ALPHABET, chain_seed=11, sample_seed=1))
    settings = TrainConfig(seq_len=32, batch_size=16, steps=150, eval_every=10_000, lr=1e-2, threads=1, seed=0)
    return train(config, settings, vocab, ids, ids[:0], path, progress=False).model


def main() -> None:
    targets = ["text.txt", "model32.npz", "model64.npz", "text.crz", "text.adapt.crz", "text.f64.crz"]
    if any((HERE / name).exists() for name in targets):
        raise SystemExit("the fixtures exist already: they are written once (see the docstring)")
    vocab = Vocab(sorted(ALPHABET))
    model32 = trained(ModelConfig(len(vocab), 24, 2, "tanh", "float32"), vocab, HERE / "train32.tmp.npz")
    model64 = trained(ModelConfig(len(vocab), 16, 1, "relu", "float64"), vocab, HERE / "train64.tmp.npz")
    for leftover in HERE.glob("train*.tmp*"):
        leftover.unlink()
    data = text()
    (HERE / "text.txt").write_bytes(data)
    save_checkpoint(HERE / "model32.npz", model32, {}, {})
    save_checkpoint(HERE / "model64.npz", model64, {}, {})
    (HERE / "text.crz").write_bytes(compress(model32, data)[0])
    (HERE / "text.adapt.crz").write_bytes(compress(model32, data, adapt=Adaptation(0.05, 16))[0])
    (HERE / "text.f64.crz").write_bytes(compress(model64, data)[0])
    for name in targets:
        print(name, (HERE / name).stat().st_size, "bytes")
    assert np.isfinite(model32.flat).all() and np.isfinite(model64.flat).all()


if __name__ == "__main__":
    main()
