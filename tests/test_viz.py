"""`charrnn viz` without a browser: hidden states against the NumPy reference, surprisal and top-k against
`score_text`, unit ranking against np.corrcoef, the compact payload (round trip, size limit, a golden file),
and the command line's outputs and errors. The page itself is tested in Chromium (test_viz_browser.py)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import reference
from tiny_models import assert_user_error, random_model, save
from typer.testing import CliRunner

from charrnn import viz
from charrnn.cli import app
from charrnn.errors import CharrnnError
from charrnn.score import score_text
from charrnn.viz import (
    chars_within,
    decode_payload,
    hidden_states,
    pattern_mask,
    quantise,
    rank_units,
    to_payload,
    visualise,
)
from charrnn.viz_page import build_page, payload_budget, payload_json

runner = CliRunner()
CHARS = 'abcdefgh "\n'
TEXT = 'ab "cad" fe\nhg "bead" ca\n"gab" dd\nface "hh"\n' * 3
GOLDEN = Path(__file__).parent / "data" / "viz_golden.json"


@pytest.mark.parametrize(("layers", "activation", "chunk"), [(1, "tanh", 1024), (2, "relu", 7), (3, "tanh", 5)])
def test_hidden_states_match_reference(monkeypatch, layers, activation, chunk):
    monkeypatch.setattr(viz, "CHUNK", chunk)  # the state carried across chunks must not change anything
    model = random_model(CHARS, hidden=6, layers=layers, activation=activation, seed=layers)
    ids = model.vocab.encode(TEXT).astype(np.int64)
    states = hidden_states(model, ids)
    expected = reference.forward(model.params, ids[None, :], model.initial_state(1), activation)
    assert states.shape == (layers, len(ids), 6)
    for layer in range(layers):
        np.testing.assert_allclose(states[layer], expected[layer][0], atol=1e-12, err_msg=f"layer {layer + 1}")


def test_surprisal_and_top_k_agree_with_score():
    model = random_model(CHARS, hidden=8, layers=2, seed=3)
    vis = visualise(model, TEXT, top=4)
    scored = score_text(model, TEXT, top=4)
    n = len(TEXT)
    assert vis.text == TEXT and vis.surprisal_bits.shape == (n,) and vis.top_ids.shape == (n, 4)
    assert np.isnan(vis.surprisal_bits[0]) and (vis.top_ids[0] == -1).all() and np.isnan(vis.top_probs[0]).all()
    np.testing.assert_allclose(vis.surprisal_bits[1:], -scored.log_probs / np.log(2), rtol=1e-12)
    np.testing.assert_array_equal(vis.top_ids[1:], scored.top_ids)
    np.testing.assert_allclose(vis.top_probs[1:], np.exp(scored.top_log_probs), rtol=1e-12)
    assert vis.bits_per_char == pytest.approx(scored.bits_per_char)
    assert (np.diff(vis.top_probs[1:], axis=1) <= 0).all()  # best first


def test_top_is_capped_by_the_vocabulary():
    model = random_model("ab", hidden=3)
    assert visualise(model, "abba", top=5).top_ids.shape == (4, 2)


def test_length_cap_and_head():
    model = random_model(CHARS, hidden=4)
    vis = visualise(model, TEXT, max_chars=30)
    assert len(vis.text) == 30 and vis.source_chars == len(TEXT) and vis.truncated
    assert not visualise(model, TEXT[:30], max_chars=30).truncated
    head = vis.head(10)
    assert head.text == TEXT[:10] and head.activations.shape[1] == 10 and head.truncated
    np.testing.assert_array_equal(head.activations, vis.activations[:, :10])


def test_a_size_limit_bounds_what_is_read():
    model = random_model(CHARS, hidden=50, layers=2)
    assert chars_within(model, None) > 10**9
    bound = chars_within(model, 100_000)  # 1 bit an activation: 100 units, ~12.5 + 33 bytes a character
    assert bound == int(100_000 / (viz.OTHER_BYTES_PER_CHAR + 1 + 100 / 8))
    vis = visualise(model, TEXT * 100, max_bytes=100_000)
    assert len(vis.text) == bound and vis.cut_by == "max_bytes"
    assert visualise(model, TEXT * 100, max_chars=100, max_bytes=100_000).cut_by == "max_chars"
    assert visualise(model, TEXT, max_bytes=100_000).cut_by is None


def test_unknown_characters_name_line_and_column_or_follow_the_policy():
    model = random_model(CHARS, hidden=4)
    with pytest.raises(CharrnnError, match=r"page.txt: 2 character\(s\).*'X' x2 \(first at line 2, column 2\), "
                                           r"'Y' x1 \(first at line 3, column 1\).*--unk skip"):  # fmt: skip
        visualise(model, "ab\ncXdX\nYa", where="page.txt")
    assert visualise(model, "ab\ncXdX\nYa", unk="skip").text == "ab\ncd\na"
    mapped = visualise(model, "abXa", unk=" ")
    assert mapped.text == "ab a" and mapped.unknown.total == 1


@pytest.mark.parametrize(("text", "message"), [("", "empty"), ("a", "at least 2")])
def test_too_little_text(text, message):
    with pytest.raises(CharrnnError, match=message):
        visualise(random_model(CHARS, hidden=4), text)


def test_pattern_mask():
    text = 'say "hi" now\n"yo"\nx'
    np.testing.assert_array_equal(np.flatnonzero(pattern_mask(text, '"[^"]*"')), [4, 5, 6, 7, 13, 14, 15, 16])
    np.testing.assert_array_equal(np.flatnonzero(pattern_mask(text, "^.")), [0, 13, 18])  # ^ at every line
    assert not pattern_mask(text, "(?=h)").any()  # empty matches cover nothing
    with pytest.raises(CharrnnError, match="not a valid regular expression"):
        pattern_mask(text, "(unclosed")


def test_rank_units_is_pearson_and_finds_a_planted_unit():
    rng = np.random.default_rng(0)
    mask = rng.random(500) < 0.3
    acts = rng.uniform(-1, 1, size=(2, 500, 7))
    acts[1, :, 4] = np.where(mask, 0.7, -0.6) + rng.normal(0, 0.1, 500)  # the planted unit
    acts[0, :, 2] = -acts[1, :, 4]  # its mirror image: same |correlation|, negative
    acts[0, :, 5] = 0.25  # a unit that never changes
    ranking = rank_units(acts, mask, top=14)
    expected = {(layer + 1, unit): np.corrcoef(acts[layer, :, unit], mask)[0, 1]
                for layer in range(2) for unit in range(7) if (layer, unit) != (0, 5)}  # fmt: skip
    assert {(u.layer, u.unit) for u in ranking[:2]} == {(1, 2), (2, 4)}
    assert ranking[0].correlation == pytest.approx(-ranking[1].correlation) and abs(ranking[0].correlation) > 0.9
    for unit in ranking:
        assert unit.correlation == pytest.approx(expected.get((unit.layer, unit.unit), 0.0), abs=1e-12)
    assert [abs(u.correlation) for u in ranking] == sorted((abs(u.correlation) for u in ranking), reverse=True)
    assert (1, 5) in [(u.layer, u.unit) for u in rank_units(acts, mask, top=14)] and ranking[-1].correlation == 0.0
    for bad in (np.zeros(500, bool), np.ones(500, bool)):
        with pytest.raises(CharrnnError, match="a correlation needs both"):
            rank_units(acts, bad)


def test_quantisation_round_trip():
    rng = np.random.default_rng(1)
    acts = rng.uniform(-1, 1, size=(2, 50, 3))
    acts[1, :, 2] *= 4.0  # a relu-like unit beyond [-1, 1] gets its own scale
    for steps in (127, 15):
        q, scales = quantise(acts, steps)
        assert q.shape == (2, 3, 50) and q.dtype == np.int8 and np.abs(q).max() <= steps
        assert scales[0].tolist() == [1, 1, 1] and scales[1, 2] == pytest.approx(np.abs(acts[1, :, 2]).max())
        back = (q / steps * scales[:, :, None]).transpose(0, 2, 1)
        assert np.abs(back - acts).max() <= 0.5 / steps * scales.max() + 1e-6


def test_payload_round_trip_and_ranking():
    model = random_model(CHARS, hidden=5, layers=2, seed=2)
    vis = visualise(model, TEXT)
    payload = json.loads(payload_json(to_payload(vis, model, "t.txt", "m.npz", pattern='"[^"]*"', top_units=4)))
    arrays = decode_payload(payload)
    assert payload["characters"] == len(TEXT) and payload["text"] == TEXT and payload["limited_by"] is None
    np.testing.assert_allclose(arrays["surprisal_bits"], vis.surprisal_bits[1:], atol=5e-4)
    np.testing.assert_array_equal(arrays["top_ids"], vis.top_ids[1:])
    np.testing.assert_allclose(arrays["top_probs"], vis.top_probs[1:], atol=1 / 65535)
    np.testing.assert_allclose(arrays["activations"], vis.activations, atol=0.5 / 127 + 1e-6)
    assert payload["pattern"]["matched"] == int(pattern_mask(TEXT, '"[^"]*"').sum())
    assert [(u["layer"], u["unit"]) for u in payload["pattern"]["ranking"]] == [
        (u.layer, u.unit) for u in vis.rank('"[^"]*"', 4)
    ]


def test_size_limit_coarsens_then_cuts():
    model = random_model("abcdefgh \n", hidden=32, layers=2, seed=5, scale=0.3)
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefgh \n"), size=3000))
    vis = visualise(model, text)
    free = to_payload(vis, model)
    assert free["activations"]["steps"] == 127 and free["limited_by"] is None
    full_size = len(payload_json(free))
    coarser = to_payload(vis, model, max_bytes=int(full_size * 0.8))
    assert coarser["activations"]["steps"] < 127 and coarser["characters"] == 3000
    assert len(payload_json(coarser)) <= full_size * 0.8
    cut = to_payload(vis, model, max_bytes=full_size // 5)
    assert cut["activations"]["steps"] == 7 and cut["limited_by"] == "max_bytes" and cut["characters"] < 3000
    assert len(payload_json(cut)) <= full_size // 5 and decode_payload(cut)["activations"].shape[1] == cut["characters"]
    with pytest.raises(CharrnnError, match="raise --max-mb"):
        to_payload(vis, model, max_bytes=100)


def test_page_is_self_contained_and_escapes_the_payload():
    model = random_model("".join(set(CHARS + "<>/!-script")), hidden=3)
    text = 'a</script><!-- "b"'
    page = build_page(to_payload(visualise(model, text), model, source="<x>", model_name="m"))
    assert page.count("</script>") == 2 and "<!--" not in page.split('id="payload">')[1]
    assert "http://" not in page and "https://" not in page and "src=" not in page
    assert "default-src 'none'" in page and "&lt;x&gt;" in page
    payload = json.loads(page.split('id="payload">')[1].split("</script>")[0])
    assert payload["text"] == text
    assert payload_budget(5) < 5_000_000 and payload_budget(0) is None


# ---- golden payload: a tiny deterministic model; regenerate with CHARRNN_REGEN_GOLDEN=1 ----


def golden_payload() -> dict:
    model = random_model('ab "\n', hidden=3, layers=2, dtype="float64", seed=11, scale=0.8)
    vis = visualise(model, 'ab "ba" a\n"b" ab', top=3)
    return to_payload(vis, model, "golden.txt", "golden.npz", pattern='"[^"]*"', top_units=3)


def golden_view(payload: dict) -> dict:
    """The payload with its arrays decoded to integers (the encoding, not zlib's bytes, is what must hold)."""
    arrays = decode_payload(payload)
    view = {k: v for k, v in payload.items() if k not in ("surprisal_mbits", "top_ids", "top_probs", "activations")}
    view["surprisal_mbits"] = np.rint(arrays["surprisal_bits"] * 1000).astype(int).tolist()
    view["top_ids"] = arrays["top_ids"].tolist()
    view["top_probs_u16"] = np.rint(arrays["top_probs"] * 65535).astype(int).tolist()
    view["activations"] = {"steps": payload["activations"]["steps"], "q": arrays["q"].astype(int).tolist(),
                           "scales": arrays["scales"].tolist()}  # fmt: skip
    return view


def test_golden_payload():
    view = json.loads(json.dumps(golden_view(golden_payload())))
    if os.environ.get("CHARRNN_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        lines = [f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}" for key, value in view.items()]
        GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for key in golden["pattern"]["ranking"]:
        key["correlation"] = pytest.approx(key["correlation"], abs=1e-6)
    assert view == golden


# ---- the command line ----


@pytest.fixture
def model_file(tmp_path):
    return save(random_model(CHARS, hidden=6, layers=2, seed=4), tmp_path / "m.npz")


def test_cli_writes_a_page_and_prints_the_payload(model_file, tmp_path):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    result = runner.invoke(app, ["viz", str(model_file), "t.txt", "-o", "page.html", "--json", "--pattern", '"[^"]*"'])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["source"] == "t.txt" and payload["model"]["name"] == "m.npz" and payload["characters"] == len(TEXT)
    assert payload["kind"] == "viz" and result.stdout.count("\n") == 1  # one JSON record (docs/json.md)
    assert {"surprisal_mbits", "top_ids", "top_probs", "activations", "pattern"} <= payload.keys()
    assert "wrote page.html" in result.stderr and "layer" in result.stderr
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and json.dumps(TEXT, ensure_ascii=False)[1:-1] in page


def test_cli_stdin_text_and_caps(model_file):
    from_stdin = runner.invoke(app, ["viz", str(model_file), "-", "--json", "--max-chars", "10"], input=TEXT)
    from_text = runner.invoke(app, ["viz", str(model_file), "--text", TEXT[:10], "--json"])
    assert from_stdin.exit_code == 0 and from_text.exit_code == 0, from_stdin.output + from_text.output
    a, b = json.loads(from_stdin.stdout), json.loads(from_text.stdout)
    assert a["text"] == b["text"] == TEXT[:10] and a["limited_by"] == "max_chars" and b["limited_by"] is None
    assert a["surprisal_mbits"] == b["surprisal_mbits"]


def test_cli_unknown_characters(model_file):
    failed = runner.invoke(app, ["viz", str(model_file), "--text", "ab\nc€", "--json"])
    assert_user_error(failed)
    assert "'€' x1 (first at line 2, column 2)" in failed.stderr and "--unk" in failed.stderr
    skipped = runner.invoke(app, ["viz", str(model_file), "--text", "ab\nc€a", "--json", "--unk", "skip"])
    assert skipped.exit_code == 0 and json.loads(skipped.stdout)["text"] == "ab\nca"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--text", "abc"], 2),  # neither -o nor --json
        (["missing.txt", "--json"], 1),
        (["--json"], 2),  # no text at all
        (["t.txt", "--text", "ab", "--json"], 2),  # both
        (["--text", "", "--json"], 1),
        (["--text", "ab", "-o", "."], 2),  # a directory
        (["--text", "ab", "-o", "no/such/dir/page.html"], 1),
        (["--text", "abc", "--json", "--pattern", "(bad"], 2),
        (["--text", "abc", "--json", "--pattern", "z"], 1),  # matches nothing
        (["--text", "abc", "--json", "--max-chars", "1"], 2),
        (["--text", "abc", "--json", "--max-mb", "-1"], 2),
        (["--text", "abc", "--json", "--top-units", "0"], 2),
        (["--text", "abc", "--json", "--unk", "nonsense"], 2),
        (["--text", "abc", "--json", "--threads", "-2"], 1),
    ],
)
def test_cli_bad_input_is_one_line_error(model_file, tmp_path, args, code):
    (tmp_path / "t.txt").write_text("abc", encoding="utf-8")
    assert_user_error(runner.invoke(app, ["viz", str(model_file), *args]), code)


def test_cli_bad_model_and_unreadable_input(model_file, tmp_path):
    assert_user_error(runner.invoke(app, ["viz", str(tmp_path / "none.npz"), "--text", "ab", "--json"]))
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    assert_user_error(runner.invoke(app, ["viz", str(tmp_path / "junk.npz"), "--text", "ab", "--json"]))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    assert_user_error(runner.invoke(app, ["viz", str(model_file), "latin1.txt", "--json"]))
    assert_user_error(runner.invoke(app, ["viz", str(model_file), str(tmp_path), "--json"]))  # a directory


def test_cli_failure_leaves_an_existing_page_alone(model_file, tmp_path):
    page = tmp_path / "page.html"
    page.write_text("keep me", encoding="utf-8")
    assert_user_error(runner.invoke(app, ["viz", str(model_file), "--text", "abc", "-o", str(page), "--pattern", "z"]))
    assert page.read_text(encoding="utf-8") == "keep me"
