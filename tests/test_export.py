"""`charrnn export`: safetensors read back with the safetensors package's NumPy API, every tensor checked
against nn.RNN / nn.Linear naming, shapes and the model's own arithmetic."""

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file
from tiny_models import random_model, save
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.score import score_text


def torch_style_log_probs(tensors, ids, layers, activation):
    """Score ids with the exported tensors the way nn.RNN + nn.Linear compute (one-hot inputs)."""
    V = tensors["output.weight"].shape[0]
    x = np.eye(V)[ids[:-1]]
    for layer in range(layers):
        H = tensors[f"rnn.weight_hh_l{layer}"].shape[0]
        h, out = np.zeros(H), []
        for row in x:
            pre = row @ tensors[f"rnn.weight_ih_l{layer}"].T + tensors[f"rnn.bias_ih_l{layer}"]
            pre = pre + h @ tensors[f"rnn.weight_hh_l{layer}"].T + tensors[f"rnn.bias_hh_l{layer}"]
            h = np.tanh(pre) if activation == "tanh" else np.maximum(pre, 0)
            out.append(h)
        x = np.array(out)
    logits = x @ tensors["output.weight"].T + tensors["output.bias"]
    logits -= logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return log_probs[np.arange(len(ids) - 1), ids[1:]]


@pytest.mark.parametrize(("layers", "activation", "dtype"), [(1, "tanh", "float32"), (3, "relu", "float64")])
def test_safetensors_export_matches_nn_rnn_naming_and_scores_alike(tmp_path, layers, activation, dtype):
    model = random_model(layers=layers, hidden=7, activation=activation, dtype=dtype, seed=3)
    save(model, tmp_path / "m.npz")
    result = CliRunner().invoke(app, ["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.safetensors")])
    assert result.exit_code == 0, result.output
    tensors = load_file(tmp_path / "m.safetensors")
    V, H = model.config.vocab_size, 7
    expected = {"output.weight": (V, H), "output.bias": (V,)}
    for layer in range(layers):
        expected |= {f"rnn.weight_ih_l{layer}": (H, V if layer == 0 else H), f"rnn.weight_hh_l{layer}": (H, H),
                     f"rnn.bias_ih_l{layer}": (H,), f"rnn.bias_hh_l{layer}": (H,)}  # fmt: skip
    assert {name: array.shape for name, array in tensors.items()} == expected
    assert all(array.dtype == np.dtype(dtype) for array in tensors.values())
    with safe_open(tmp_path / "m.safetensors", framework="numpy") as handle:
        meta = handle.metadata()
    assert json.loads(meta["charrnn.vocab"]) == list(model.vocab.chars)
    assert json.loads(meta["charrnn.config"])["num_layers"] == layers
    text = "abcab\nhgfedcba\n" * 3
    ids = model.vocab.encode(text).astype(np.int64)
    tolerance = 1e-5 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(torch_style_log_probs(tensors, ids, layers, activation),
                               score_text(model, text).log_probs, atol=tolerance)  # fmt: skip


def test_export_refuses_to_overwrite_and_names_bad_input(tmp_path):
    model_path = tmp_path / "m.npz"
    save(random_model(seed=1), model_path)
    runner = CliRunner()
    target = tmp_path / "out.safetensors"
    target.write_text("keep me")
    result = runner.invoke(app, ["export", str(model_path), "-o", str(target)])
    assert result.exit_code == 1 and "exists; pass --force" in result.output and target.read_text() == "keep me"
    assert runner.invoke(app, ["export", str(model_path), "-o", str(target), "--force"]).exit_code == 0
    result = runner.invoke(app, ["export", str(model_path), "-o", str(model_path), "--force"])
    assert result.exit_code == 1 and "is the model itself" in result.output
    result = runner.invoke(app, ["export", str(model_path), "-o", str(tmp_path / "x"), "--format", "onnx"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["export", str(tmp_path / "none.npz"), "-o", str(tmp_path / "y")])
    assert result.exit_code == 1 and result.output.count("\n") == 1
