"""PyTorch loads what `charrnn export` writes and scores a text exactly as `charrnn score` does.

    python benchmarks/export_check.py [MODEL.npz] [TEXT]     (defaults: a random 2 x 64 model, a built-in text)

Builds torch.nn.RNN(V, H, L) + torch.nn.Linear(H, V), loads the exported safetensors into them by name
(strict: every tensor used, none missing), scores the text from a zero state in float64, and prints the
largest per-character difference from charrnn's log-probabilities and both totals as JSON.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from charrnn.export import export_model
from charrnn.model import Model, ModelConfig, load_model
from charrnn.score import score_text
from charrnn.vocab import Vocab

TEXT = "The quick brown fox jumps over the lazy dog.\nPack my box with five dozen liquor jugs.\n" * 20


def main() -> None:
    if len(sys.argv) > 1:
        model = load_model(sys.argv[1])
    else:
        vocab = Vocab.from_text(TEXT)
        model = Model.initialize(ModelConfig(len(vocab), 64, 2), vocab, np.random.default_rng(0))
    text = Path(sys.argv[2]).read_text() if len(sys.argv) > 2 else TEXT
    text = "".join(c for c in text if c in model.vocab)[:20000]
    with tempfile.TemporaryDirectory() as directory:
        path = export_model(model, Path(directory) / "m.safetensors")
        tensors = load_file(path)
    c = model.config
    rnn = torch.nn.RNN(c.vocab_size, c.hidden_size, c.num_layers, nonlinearity=c.activation, batch_first=True)
    output = torch.nn.Linear(c.hidden_size, c.vocab_size)
    rnn.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("rnn.")}, strict=True)
    output.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("output.")}, strict=True)
    rnn, output = rnn.double(), output.double()
    ids = torch.tensor(model.vocab.encode(text).astype(np.int64))
    with torch.inference_mode():
        hidden, _ = rnn(torch.nn.functional.one_hot(ids[:-1], c.vocab_size).double()[None])
        log_probs = torch.log_softmax(output(hidden[0]), dim=-1)[torch.arange(len(ids) - 1), ids[1:]].numpy()
    ours = score_text(model, text).log_probs
    report = {"characters": len(text), "dtype": c.dtype, "max_abs_difference": float(np.abs(log_probs - ours).max()),
              "torch_total_nats": float(-log_probs.sum()), "charrnn_total_nats": float(-ours.sum())}  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
