"""Hostile checkpoints: every way a model file can lie gets one clear CharrnnError naming the file and
the field — never a traceback, never an allocation the file asked for before it was checked."""

import io
import json
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import random_model, save
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.errors import CharrnnError
from charrnn.model import load_checkpoint


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


def npy(array=None, header=None, data=b"") -> bytes:
    """An .npy member: a real array, or a header dict of our choosing followed by `data`."""
    handle = io.BytesIO()
    if array is not None:
        np.lib.format.write_array(handle, np.asarray(array), allow_pickle=False)
        return handle.getvalue()
    np.lib.format.write_array_header_1_0(handle, header)
    return handle.getvalue() + data


def rewrite(path, out, replace=None, drop=(), compress=False):
    contents = members(path)
    for name in drop:
        contents.pop(f"{name}.npy")
    for name, payload in (replace or {}).items():
        contents[f"{name}.npy"] = payload
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, payload in contents.items():
            archive.writestr(name, payload)
    return out


def meta_of(path) -> dict:
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["meta"]))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "m.npz"
    save(random_model(layers=2, hidden=6, dtype="float32", seed=1), path)
    return path


def expect_error(path, *fragments):
    with pytest.raises(CharrnnError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def with_meta(good, tmp_path, change):
    meta = meta_of(good)
    change(meta)
    return rewrite(good, tmp_path / "bad.npz", {"meta": npy(np.array(json.dumps(meta)))})


CONFIG_LIES = [
    ("hidden_size", 1_000_000, "needs ~"),  # terabytes: refused from the config, before any allocation
    ("hidden_size", 6.0, "must be int"),
    ("hidden_size", True, "must be int"),
    ("hidden_size", "6", "must be int"),
    ("hidden_size", -3, "--hidden must be >= 1"),
    ("num_layers", 0, "--layers must be >= 1"),
    ("num_layers", None, "must be int"),
    ("vocab_size", 10**15, "expected (1000000000000000,)"),  # the vocabulary array contradicts it
    ("activation", "gelu", "--activation must be one of"),
    ("activation", 3, "must be str"),
    ("dtype", "float16", "--dtype must be one of"),
    ("dtype", ["float32"], "must be str"),
    ("surprise", 1, "unknown field(s) surprise"),
]


@pytest.mark.parametrize(("field", "value", "fragment"), CONFIG_LIES, ids=lambda v: repr(v)[:20])
def test_config_fields_of_the_wrong_type_or_size(good, tmp_path, field, value, fragment):
    expect_error(with_meta(good, tmp_path, lambda m: m["config"].__setitem__(field, value)), fragment)


META_LIES = [
    (lambda m: m.pop("config"), "config is missing"),
    (lambda m: m.__setitem__("config", [1, 2]), "config is missing or not an object"),
    (lambda m: m.__setitem__("version", True), "version True is not supported"),
    (lambda m: m.__setitem__("version", 99), "version 99 is not supported"),
    (lambda m: m.__setitem__("version", "1"), "version '1' is not supported"),
    (lambda m: m.__setitem__("format", "keras"), "not a charrnn checkpoint"),
]


@pytest.mark.parametrize(("change", "fragment"), META_LIES)
def test_metadata_lies(good, tmp_path, change, fragment):
    expect_error(with_meta(good, tmp_path, change), fragment)


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [(npy(np.array("{not json")), "not valid JSON"), (npy(np.array([1, 2])), "not a JSON string"),
     (npy(np.array("[1, 2]")), "format field missing"), (npy(np.array("[" * 100000 + "]" * 100000)), "not valid JSON")],
)  # fmt: skip
def test_metadata_that_is_not_a_json_object(good, tmp_path, meta, fragment):
    expect_error(rewrite(good, tmp_path / "bad.npz", {"meta": meta}), fragment)


VOCAB_LIES = [
    (np.array([10, 0xD800, 98, 99, 100, 101, 102, 103, 104], np.int32), "invalid code point (55296)"),
    (np.array([10, 97, 98, 99, 100, 101, 102, 103, 0x110000], np.int32), "invalid code point"),
    (np.array([-1, 97, 98, 99, 100, 101, 102, 103, 104], np.int32), "invalid code point (-1)"),
    (np.array([10, 98, 97, 99, 100, 101, 102, 103, 104], np.int32), "not sorted distinct"),
    (np.array([10, 97, 97, 99, 100, 101, 102, 103, 104], np.int32), "not sorted distinct"),
    (np.array([10, 97, 98], np.int32), "has shape (3,), expected (9,)"),
    (np.linspace(10, 104, 9), "has dtype float64"),
]


@pytest.mark.parametrize(("vocab", "fragment"), VOCAB_LIES, ids=range(len(VOCAB_LIES)))
def test_vocabulary_lies(good, tmp_path, vocab, fragment):
    expect_error(rewrite(good, tmp_path / "bad.npz", {"vocab": npy(vocab)}), "vocab", fragment)


def test_a_header_declaring_a_terabyte_is_refused_before_reading(good, tmp_path):
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
    bad = rewrite(good, tmp_path / "bad.npz", {"Wy": npy(header=header, data=b"\0" * 64)})
    expect_error(bad, "'Wy'", "has shape (1000000, 1000000), expected (6, 9)")


def test_a_member_that_would_inflate_past_its_array_is_refused(good, tmp_path):
    """A zip bomb: the Wx member inflates to 64 MB from a few KB; refused from the zip directory alone."""
    header = npy(header={"descr": "<f4", "fortran_order": False, "shape": (9, 6)})
    payload = header + b"\0" * (64 << 20)
    bad = rewrite(good, tmp_path / "bad.npz", {"Wx": payload}, compress=True)
    assert bad.stat().st_size < 1 << 20 and zlib  # small on disk
    expect_error(bad, "'Wx' is damaged")


@pytest.mark.parametrize(
    ("name", "array", "fragment"),
    [("Wh", np.zeros((2, 6, 5), np.float32), "has shape (2, 6, 5), expected (2, 6, 6)"),
     ("Wh", np.zeros((2, 6, 6), np.float64), "has dtype float64, expected float32"),
     ("by", np.zeros(9, np.complex64), "has dtype complex64"),
     ("by", np.full(9, np.nan, np.float32), "parameter by holds non-finite values"),
     ("Wy", np.full((6, 9), np.inf, np.float32), "parameter Wy holds non-finite values"),
     ("hidden", np.zeros((2, 4, 7), np.float32), "array 'hidden' has shape (2, 4, 7), expected (2, batch, 6)"),
     ("hidden", np.zeros((8,), np.float32), "array 'hidden' has shape (8,)"),
     ("optim.m", np.zeros(5, np.float32), "array 'optim.m' has shape (5,)")],
)  # fmt: skip
def test_arrays_of_the_wrong_shape_dtype_or_value(good, tmp_path, name, array, fragment):
    expect_error(rewrite(good, tmp_path / "bad.npz", {name: npy(array)}), fragment)


def test_object_arrays_and_missing_arrays(good, tmp_path):
    header = {"descr": "|O", "fortran_order": False, "shape": (9,)}
    expect_error(rewrite(good, tmp_path / "a.npz", {"by": npy(header=header, data=b"\0" * 72)}), "never holds")
    expect_error(rewrite(good, tmp_path / "b.npz", drop=["Wu"]), "array 'Wu' is missing")
    expect_error(rewrite(good, tmp_path / "c.npz", drop=["meta"]), "no 'meta'/'vocab'")


def test_unknown_arrays_are_never_read(good, tmp_path):
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**9,)}
    bad = rewrite(good, tmp_path / "extra.npz", {"junk": npy(header=header)})
    model, _, extras = load_checkpoint(bad)
    assert "junk" not in extras and model.config.hidden_size == 6


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is a text file\n", b"PK\x03\x04" + b"\0" * 40, b"\x93NUMPY" + b"\0" * 40],
)
def test_files_that_are_not_checkpoints(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    message = expect_error(path)
    assert "allow_pickle" not in message and "pickle" not in message


def test_the_cli_shows_one_line_and_no_pickle_advice(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n")
    result = CliRunner().invoke(app, ["sample", str(path), "-n", "5"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "pickle" not in result.output and "Traceback" not in result.output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_any_flipped_byte_loads_or_fails_cleanly(good, tmp_path, position, value):
    data = bytearray(good.read_bytes())
    data[position % len(data)] = value
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    try:
        model, _, _ = load_checkpoint(path)
    except CharrnnError as error:
        assert "\n" not in str(error)
        return
    assert np.isfinite(model.flat).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=8),
       field=st.sampled_from(["vocab_size", "hidden_size", "num_layers", "activation", "dtype", "config"]))  # fmt: skip
def test_any_metadata_value_loads_or_fails_cleanly(good, tmp_path, value, field):
    def change(meta):
        if field == "config":
            meta["config"] = value
        else:
            meta["config"][field] = value

    path = with_meta(good, tmp_path, change)
    try:
        load_checkpoint(path)
    except CharrnnError as error:
        assert "\n" not in str(error)


def test_a_zip_version_this_python_cannot_extract_is_a_clean_error(good, tmp_path):
    """Found by the byte-flip test: a central-directory entry asking for zip version 6.4 made zipfile raise
    NotImplementedError at open, which escaped as a traceback."""
    data = bytearray(good.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central-directory entry; byte 6 is "version needed to extract"
    data[entry + 6] = 64
    path = tmp_path / "m.npz"
    path.write_bytes(bytes(data))
    expect_error(path, "is not a readable charrnn checkpoint", "zip file version 6.4")
