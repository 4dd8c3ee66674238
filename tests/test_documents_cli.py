"""`--documents` at the command line: train, sample, score, attribute, info, and every misuse as one
`Error:` line."""

import json

import numpy as np
import pytest
from test_cli import assert_one_line_error, invoke
from test_documents import make_names

SMALL = ["--hidden", "16", "--layers", "1", "--batch-size", "8", "--seq-len", "16", "-q", "--sample-every", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """names.txt (one name per line) and a documents model trained on it from the command line."""
    folder = tmp_path_factory.mktemp("cli-docs")
    names = folder / "names.txt"
    names.write_text("\n".join(make_names(500, seed=11)) + "\n", encoding="utf-8")
    result = invoke("train", names, "--documents", "lines", "--val-docs", "50", "-o", folder / "m.npz",
                    "--steps", "120", "--eval-every", "60", "--lr", "0.01", *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "500 documents" not in result.stderr and "450 training documents" in result.stderr
    return folder


def test_sample_prints_whole_documents_in_the_corpus_format(trained):
    result = invoke("sample", trained / "m.npz", "-n", "20", "--seed", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert len(lines) == 21 and lines[-1] == "" and all(lines[:20])  # 20 documents, one per line
    assert set("".join(lines)) <= set("abcdefgh")
    default = invoke("sample", trained / "m.npz", "--seed", "3")
    assert default.stdout.count("\n") == 10


def test_sample_json_marks_where_each_document_comes_from(trained):
    corpus = set((trained / "names.txt").read_text().split())
    result = invoke("sample", trained / "m.npz", "-n", "30", "--seed", "1", "--json", "--unique")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 30 and len({r["text"] for r in rows}) == 30
    assert {r["status"] for r in rows} <= {"new", "in-train", "in-validation"}
    assert all((r["status"] == "new") == (r["text"] not in corpus) for r in rows)
    novel = [json.loads(line) for line in invoke("sample", trained / "m.npz", "-n", "10", "--novel", "--json",
                                                 "--seed", "2").stdout.splitlines()]  # fmt: skip
    assert len(novel) == 10 and all(r["status"] == "new" for r in novel)


def test_score_documents(trained, tmp_path):
    test = tmp_path / "test.txt"
    test.write_text("abc\nhead\n\nfeed\n", encoding="utf-8")
    result = invoke("score", trained / "m.npz", test, "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("text") for r in rows[:3]] == ["abc", "head", "feed"] and rows[0]["predictions"] == 4
    total = rows[-1]
    assert total["kind"] == "document_scores" and {r["kind"] for r in rows[:3]} == {"document_score"}
    assert total["documents"] == 3 and total["predictions"] == 14
    assert abs(total["log_likelihood_nats"] - sum(r["log_likelihood_nats"] for r in rows[:3])) < 1e-9
    text = invoke("score", trained / "m.npz", test, "--documents")
    assert text.exit_code == 0 and "3 documents, 11 characters + 3 end symbols scored" in text.stdout


def test_attribute_documents(trained, tmp_path):
    test = tmp_path / "test.txt"
    test.write_text("abc\nhead\n", encoding="utf-8")
    result = invoke("attribute", test, "-m", trained / "m.npz", "-m", trained / "m.best.npz", "--documents", "--json")
    assert result.exit_code == 0, result.output
    *verdicts, report = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["text"] for d in verdicts] == ["abc", "head"] and sum(report["documents_won"].values()) == 2
    assert {d["kind"] for d in verdicts} == {"document_verdict"} and report["kind"] == "document_attribution"


def test_documents_json_follows_the_documented_convention(trained, tmp_path):
    from test_cli_trust import DOCS, RETIRED, keys

    test = tmp_path / "t.txt"
    test.write_text("abc\nhead\n", encoding="utf-8")
    model = trained / "m.npz"
    for command in (["sample", model, "-n", "3", "--json"], ["score", model, test, "--json"], ["info", model, "--json"],
                    ["attribute", test, "-m", model, "--documents", "--json"]):  # fmt: skip
        for record in [json.loads(line) for line in invoke(*command).stdout.splitlines()]:
            assert f'`"{record["kind"]}"`' in DOCS, record["kind"]
            won = record.pop("documents_won", None)  # keyed by model name, as `models` is
            assert won is None or "`documents_won`" in DOCS
            for key in set(keys(record)):
                assert f"`{key}`" in DOCS and key not in RETIRED, (command[0], key)


def test_info_shows_the_end_symbol(trained):
    details = json.loads(invoke("info", trained / "m.npz", "--json").stdout)
    assert details["end_symbol"] and details["format_version"] == 2 and details["documents"]["split"] == "lines"


def test_resume_a_documents_run(trained, tmp_path):
    target = tmp_path / "r.npz"
    target.write_bytes((trained / "m.npz").read_bytes())
    result = invoke("train", trained / "names.txt", "--documents", "lines", "--val-docs", "50", "-o", target,
                    "--resume", target, "--steps", "130", "--eval-every", "60", "--lr", "0.01", *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stopped (steps) at step 130" in result.stderr


def test_misuse_is_one_line(trained, tmp_path, corpus_file):
    model = trained / "m.npz"
    stream = tmp_path / "s.npz"
    assert invoke("train", corpus_file, "-o", stream, "--steps", "2", *SMALL).exit_code == 0
    no_documents = invoke("train", corpus_file, "--val-docs", "3", "-o", tmp_path / "x.npz")
    assert_one_line_error(no_documents, "--documents", code=2)
    assert_one_line_error(invoke("sample", model, "--stop", "x"), "--stop does not apply", code=2)
    assert_one_line_error(invoke("sample", model, "--num-samples", "3"), "--num-samples", code=2)
    assert_one_line_error(invoke("sample", stream, "--novel"), "apply to documents models", code=2)
    assert_one_line_error(invoke("score", model, "--text", "abc", "--per-char"), "--per-char", code=2)
    assert_one_line_error(invoke("score", stream, "--text", "abc", "--documents"), "not a documents model")
    assert_one_line_error(invoke("attribute", corpus_file, "-m", stream, "--documents"), "not a documents model")
    assert_one_line_error(invoke("train", corpus_file, "-o", tmp_path / "y.npz", "--resume", model),
                          "not in the model's vocabulary")  # resuming keeps --documents (recorded)  # fmt: skip
    assert_one_line_error(invoke("train", trained / "names.txt", "--documents", "lines", "-o", tmp_path / "z.npz",
                                 "--init-from", model, *SMALL), "--init-from")  # fmt: skip
    other_split = invoke("train", trained / "names.txt", "--documents", "blank-lines", "-o", tmp_path / "w.npz",
                         "--resume", model, *SMALL)  # fmt: skip
    assert_one_line_error(other_split, "trained otherwise: --documents blank-lines", code=2)
    assert_one_line_error(invoke("train", trained / "names.txt", "--documents", "lines", "--unk", "skip", "-o",
                                 tmp_path / "u.npz"), "--unk does not apply", code=2)  # fmt: skip
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n", encoding="utf-8")
    assert_one_line_error(invoke("train", empty, "--documents", "lines", "-o", tmp_path / "v.npz"), "no documents")
    assert_one_line_error(invoke("sample", model, "-n", "5", "--unique", "--greedy"), "found only")
    np.testing.assert_equal(invoke("sample", model, "-n", "0").exit_code, 1)
