"""Help and README cannot drift: every command and option has help text and appears in the README."""

from pathlib import Path

import pytest
import typer.main

from charrnn.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def commands(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        path = prefix + (name,)
        if hasattr(command, "commands"):
            yield from commands(command, path)
        else:
            yield " ".join(path), command


ALL = list(commands())


@pytest.mark.parametrize("name, command", ALL, ids=[name for name, _ in ALL])
def test_command_has_help_and_is_documented(name, command):
    assert command.help, f"charrnn {name} has no help text"
    assert f"charrnn {name}" in README, f"charrnn {name} is not in README.md"
    for param in command.params:
        if param.param_type_name == "option" and "--help" not in param.opts:
            assert getattr(param, "help", None), f"charrnn {name} {param.opts[0]} has no help text"
            assert any(opt in README for opt in param.opts), f"charrnn {name}: {param.opts[-1]} is not in README.md"


def test_readme_test_command_is_what_ci_runs():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in README and "<!-- test-command -->" in ci


def test_readme_train_defaults_match_the_code():
    """The defaults in the README's `charrnn train` table are the ones the code uses."""
    from charrnn.model import ModelConfig
    from charrnn.train import TrainConfig

    model, training = ModelConfig(vocab_size=2), TrainConfig()
    expected = {
        "--hidden": model.hidden_size,
        "--layers": model.num_layers,
        "--seq-len": training.seq_len,
        "--batch-size": training.batch_size,
        "--lr": training.lr,
        "--dropout": training.dropout,
        "--clip": training.clip,
    }
    for option, value in expected.items():
        rows = [line for line in README.splitlines() if line.startswith(f"| `{option}` |")]
        assert rows, f"{option} has no row in the README's options table"
        assert float(rows[0].split("|")[2]) == value, f"README says {option} defaults to {rows[0].split('|')[2]}"
