"""Quality against a known answer: on text from an order-2 Markov source, the trained model's held-out
bits/char comes within 0.02 of the source's exact entropy rate (issue 5's target)."""

import math

from charrnn.model import ModelConfig
from charrnn.synth import markov_text
from charrnn.train import TrainConfig, evaluate, train
from charrnn.vocab import Vocab


def test_order2_markov_source_reaches_its_entropy_rate(tmp_path):
    source = markov_text(240_000, order=2, alphabet_size=5, concentration=0.5, seed=3)
    vocab = Vocab.from_text(source.text)
    ids = vocab.encode(source.text)
    train_ids, held_out = ids[:200_000], ids[200_000:]
    config = TrainConfig(seq_len=32, batch_size=32, lr=1e-2, steps=1500, eval_every=1500, dropout=0.0, seed=1)
    result = train(ModelConfig(len(vocab), 32), config, vocab, train_ids, held_out[:2000], tmp_path / "m.npz",
                   progress=False)  # fmt: skip
    bits = evaluate(result.model, held_out, 32, 32) / math.log(2)
    print(f"held-out {bits:.4f} bits/char, exact entropy rate {source.entropy_rate:.4f}")
    assert abs(bits - source.entropy_rate) <= 0.02, (bits, source.entropy_rate)
