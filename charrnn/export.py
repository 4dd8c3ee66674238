"""Export a model's weights for other frameworks: safetensors (no dependency) or a PyTorch state_dict.

Names and layouts are those of `torch.nn.RNN(input_size=V, hidden_size=H, num_layers=L, nonlinearity=...,
batch_first=True)` followed by `torch.nn.Linear(H, V)` (prefixes `rnn.` and `output.`), with one-hot
inputs: PyTorch computes h_t = f(x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh), charrnn h_t = f(x_t·Wx + bh +
h_{t-1}·Wh), so

    rnn.weight_ih_l0 = Wxᵀ (H, V)     rnn.weight_ih_l{l} = Wu[l-1]ᵀ (H, H)   rnn.weight_hh_l{l} = Wh[l]ᵀ
    rnn.bias_ih_l{l} = bh[l]          rnn.bias_hh_l{l} = 0                  output.weight = Wyᵀ (V, H)
    output.bias = by

The vocabulary (id -> character) and the architecture travel in the safetensors metadata (`charrnn.vocab`
as a JSON list of characters, `charrnn.config` as JSON), so a reader needs nothing else.

safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the raw
little-endian tensors back to back.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .atomic import atomic_writer
from .errors import CharrnnError
from .model import Model

FORMATS = ("safetensors", "torch")
_DTYPES = {"float32": "F32", "float64": "F64"}


def torch_state_dict(model: Model) -> dict[str, np.ndarray]:
    """The nn.RNN + nn.Linear tensors, named and shaped as PyTorch's modules hold them (C-contiguous)."""
    p, L = model.params, model.config.num_layers
    tensors: dict[str, np.ndarray] = {}
    for layer in range(L):
        w_in = p["Wx"] if layer == 0 else p["Wu"][layer - 1]
        tensors[f"rnn.weight_ih_l{layer}"] = np.ascontiguousarray(w_in.T)
        tensors[f"rnn.weight_hh_l{layer}"] = np.ascontiguousarray(p["Wh"][layer].T)
        tensors[f"rnn.bias_ih_l{layer}"] = p["bh"][layer].copy()
        tensors[f"rnn.bias_hh_l{layer}"] = np.zeros_like(p["bh"][layer])
    tensors["output.weight"] = np.ascontiguousarray(p["Wy"].T)
    tensors["output.bias"] = p["by"].copy()
    return tensors


def metadata(model: Model) -> dict[str, str]:
    return {
        "format": "pt",
        "charrnn.vocab": json.dumps(list(model.vocab.chars), ensure_ascii=False),
        "charrnn.config": json.dumps(asdict(model.config)),
        "charrnn.torch_modules": "rnn: nn.RNN(V, H, L, nonlinearity, batch_first=True); output: nn.Linear(H, V)",
    }


def safetensors_bytes(tensors: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    """The safetensors serialisation of `tensors` (sorted by name, 8-byte aligned header)."""
    header: dict[str, object] = {"__metadata__": meta}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[array.dtype.name], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}  # fmt: skip
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return len(encoded).to_bytes(8, "little") + encoded + b"".join(blobs)


def export_model(model: Model, output: str | Path, fmt: str = "safetensors") -> Path:
    """Write `model` to `output` in `fmt` ('safetensors' or 'torch', the latter needs PyTorch), atomically."""
    output = Path(output)
    if fmt not in FORMATS:
        raise CharrnnError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    tensors = torch_state_dict(model)
    if fmt == "safetensors":
        payload = safetensors_bytes(tensors, metadata(model))
        with atomic_writer(output) as handle:
            handle.write(payload)
        return output
    try:
        import torch
    except ImportError:
        raise CharrnnError("--format torch needs PyTorch (pip install torch); safetensors needs nothing") from None
    state = {name: torch.from_numpy(array) for name, array in tensors.items()}
    with atomic_writer(output) as handle:
        torch.save({"state_dict": state, "metadata": metadata(model)}, handle)
    return output
