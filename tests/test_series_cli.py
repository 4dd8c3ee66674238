"""`charrnn series ...` as a user meets it: the whole flow, and every bad input as one `Error:` line."""

import json

import numpy as np
import pytest
from test_cli import assert_one_line_error, invoke

SMALL = ["--units", "6", "--epochs", "2", "-q"]


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """A small generated data file and a model trained on it through the command line."""
    root = tmp_path_factory.mktemp("series")
    data, model = root / "data.npz", root / "model.npz"
    assert invoke("series", "generate", "-o", data, "--series", "300", "--steps", "24", "--seed", "1").exit_code == 0
    result = invoke("series", "train", data, "-o", model, "--units", "6,6", "--epochs", "2", "--ahead", "2",
                    "--window", "18", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    return root, data, model


def test_generate_writes_the_seed_split(tmp_path):
    result = invoke("series", "generate", "-o", tmp_path / "d.npz", "--seed", "42")
    assert result.exit_code == 0 and "10,000 series of 51 steps" in result.stderr
    with np.load(tmp_path / "d.npz", allow_pickle=False) as archive:
        assert [archive[k].shape for k in ("train", "valid", "test")] == [(7000, 51), (2000, 51), (1000, 51)]
    assert invoke("series", "generate", "-o", tmp_path / "d.csv", "--series", "20", "--steps", "9").exit_code == 0
    rows = (tmp_path / "d.csv").read_text().splitlines()
    assert len(rows) == 20 and all(len(r.split(",")) == 9 for r in rows)


def test_train_prints_summary_and_saves(tmp_path, flow):
    _, data, _ = flow
    one_unit = ["--units", "1", "--head", "none", "--epochs", "1"]
    result = invoke("series", "train", data, "-o", tmp_path / "m.npz", *one_unit)
    assert result.exit_code == 0, result.output
    assert "simple_rnn_1 (SimpleRNN)" in result.stderr and "Total params: 3" in result.stderr
    assert "saved" in result.stderr
    result = invoke("series", "train", data, "-o", tmp_path / "j.npz", *SMALL[:-1], "--json")
    details = json.loads(result.stdout)
    assert details["task"] == {"window": 23, "ahead": 1, "every_step": False}
    assert len(details["history"]["val_loss"]) == 2


def test_evaluate_reports_model_and_baselines(flow):
    _, data, model = flow
    result = invoke("series", "evaluate", model, data, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["task"] == {"window": 18, "ahead": 2, "method": "direct", "every_step": False}
    for split in ("valid", "test"):
        assert set(report["splits"][split]) == {"series", "model", "naive", "linear"}
        assert report["splits"][split]["naive"]["mse"] > report["splits"][split]["linear"]["mse"]
    iterated = json.loads(invoke("series", "evaluate", model, data, "--ahead", "5", "--json").stdout)
    assert iterated["task"]["method"] == "iterated (2 at a time)"
    text = invoke("series", "evaluate", model, data).stdout
    assert "naive" in text and "linear" in text and "MSE" in text and "MAE" in text


def test_forecast_csv_and_json(flow, tmp_path):
    _, data, model = flow
    result = invoke("series", "forecast", model, data, "--limit", "4", "--steps", "3")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and lines[0] == "step_1,step_2,step_3" and len(lines) == 5
    result = invoke("series", "forecast", model, data, "--limit", "2", "--json")
    assert json.loads(result.stdout)["method"] == "direct" and len(json.loads(result.stdout)["forecasts"]) == 2
    assert invoke("series", "forecast", model, data, "-o", tmp_path / "f.csv").exit_code == 0
    assert len((tmp_path / "f.csv").read_text().splitlines()) == 1 + 30  # header + the test split
    assert invoke("series", "forecast", model, data, "-o", tmp_path / "f.json").exit_code == 0
    assert len(json.loads((tmp_path / "f.json").read_text())["forecasts"]) == 30


def test_one_long_series_windowed(tmp_path):
    t = np.arange(400)
    values = 100 + 20 * np.sin(t / 7)  # far outside [-1, 1]: normalised inside
    (tmp_path / "long.csv").write_text("month,passengers\n" + "\n".join(f"{i},{v:.4f}" for i, v in enumerate(values)))
    model = tmp_path / "m.npz"
    result = invoke("series", "train", tmp_path / "long.csv", "-o", model, "--window", "30", "--column", "passengers",
                    "--epochs", "15", "--lr", "0.01", "--units", "8", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(invoke("series", "evaluate", model, tmp_path / "long.csv", "--json").stdout)
    assert report["splits"]["valid"]["model"]["mse"] < report["splits"]["valid"]["naive"]["mse"]
    result = invoke("series", "forecast", model, tmp_path / "long.csv", "--steps", "5", "--json")
    forecast = json.loads(result.stdout)["forecasts"]
    assert len(forecast) == 1 and len(forecast[0]) == 5 and 70 < min(forecast[0]) and max(forecast[0]) < 130


def test_info_on_a_series_model(flow):
    _, _, model = flow
    result = invoke("info", model)
    assert result.exit_code == 0 and "series model" in result.stdout and "Total params" in result.stdout
    details = json.loads(invoke("info", model, "--json").stdout)
    assert details["kind"] == "series"
    assert details["total_parameters"] == sum(row["parameters"] for row in details["layers"])


def test_plot_writes_a_png(flow, tmp_path):
    pytest.importorskip("matplotlib")
    _, data, model = flow
    result = invoke("series", "plot", model, data, "-o", tmp_path / "p.png", "--count", "2")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "content, args, fragments",
    [
        ("1,2,3\n4,5\n", [], ["rows.csv line 2 has 2 values", "3"]),
        ("1,2,3\n4,nan,6\n", [], ["line 2, column 2", "not a finite number"]),
        ("1,2,3\n4,inf,6\n", [], ["line 2, column 2", "not a finite number"]),
        ("1,2,3\n4,x,6\n", [], ["line 2, column 2", "'x' is not a number"]),
        ("", [], ["no numbers", "empty file"]),
        ("a,b,c\n", [], ["only a header"]),
        ("1\n2\n3\n4\n", ["--window", "10"], ["--window 10", "the series has 4"]),
        ("1,2\n3,4\n5,6\n", ["--window", "1"], ["one series", "--column"]),
        ("x,y\n1,2\n3,4\n", ["--window", "1", "--column", "z"], ["no column 'z'"]),
        ("1,2,3\n", ["--units", "2,a"], ["--units takes comma-separated whole numbers"]),
        ("1,2,3\n", ["--head", "softmax"], ["--head must be dense or none"]),
        ("1,2,3\n", ["--split", "0.5,0.5"], ["--split takes three fractions"]),
        ("1,2,3\n", ["--optimizer", "lion"], ["optimizer must be one of"]),
        ("1,2,3\n" * 10, ["--ahead", "3"], ["leave no input window"]),
    ],
    ids=["ragged", "nan", "inf", "word", "empty", "header-only", "window-too-long", "table-with-window",
         "no-such-column", "bad-units", "bad-head", "bad-split", "bad-optimizer", "no-window-left"],  # fmt: skip
)
def test_bad_input_is_one_line(tmp_path, content, args, fragments):
    (tmp_path / "rows.csv").write_text(content)
    result = invoke("series", "train", tmp_path / "rows.csv", "-o", tmp_path / "m.npz", *SMALL, *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "m.npz").exists()


def test_bad_files_are_one_line(tmp_path, flow):
    _, data, model = flow
    (tmp_path / "junk.npz").write_bytes(b"junk")
    np.savez(tmp_path / "nan.npz", train=np.full((3, 5), np.nan), valid=np.zeros((1, 5)), test=np.zeros((1, 5)))
    cases = [
        (("series", "train", tmp_path / "missing.csv", "-o", tmp_path / "m.npz"), ["does not exist"]),
        (("series", "train", tmp_path / "junk.npz", "-o", tmp_path / "m.npz"), ["not a readable .npz"]),
        (("series", "train", tmp_path / "nan.npz", "-o", tmp_path / "m.npz"), ["non-finite", "series 0"]),
        (("series", "train", data, "-o", tmp_path / "no" / "m.npz"), ["directory", "does not exist"]),
        (("series", "evaluate", tmp_path / "junk.npz", data), ["not a readable series model"]),
        (("series", "evaluate", model, data, "--ahead", "40"), ["needs series of 58"]),
        (("series", "generate", "-o", tmp_path / "d.txt"), ["must end in .npz or .csv"]),
        (("series", "forecast", model, data, "--split", "dev"), ["split must be train, valid or test"]),
    ]
    for args, fragments in cases:
        assert_one_line_error(invoke(*args), *fragments)
    (tmp_path / "short.csv").write_text("1,2,3\n")
    result = invoke("series", "forecast", model, tmp_path / "short.csv")
    assert_one_line_error(result, "shorter than the model's window")
