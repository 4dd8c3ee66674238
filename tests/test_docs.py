"""Help and documentation cannot drift: every command and option has help text and appears in the README or a
docs/ page, the documented train defaults are the code's, and the README's tour of every command runs."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from charrnn.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {path.name: path.read_text(encoding="utf-8") for path in sorted((ROOT / "docs").glob("*.md"))}
DOCS = "\n".join([README, *PAGES.values()])  # the README and every docs/ page


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
    assert f"charrnn {name}" in README, f"charrnn {name} is not in README.md (its tour lists every command)"
    for param in command.params:
        if param.param_type_name == "option" and "--help" not in param.opts:
            assert getattr(param, "help", None), f"charrnn {name} {param.opts[0]} has no help text"
            assert any(opt in DOCS for opt in param.opts), f"charrnn {name}: {param.opts[-1]} is not documented"


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in README and "<!-- test-command -->" in ci


def test_readme_train_defaults_match_the_code():
    """The defaults in the documented `charrnn train` options table (wherever it is) are the ones the code uses."""
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
        rows = [line for line in DOCS.splitlines() if line.startswith(f"| `{option}` |")]
        assert rows, f"{option} has no row in the documented options table"
        assert float(rows[0].split("|")[2]) == value, f"the docs say {option} defaults to {rows[0].split('|')[2]}"


def test_readme_links_and_images_resolve():
    """Every relative link or image of the README and the docs/ pages points at a file that exists (the pages
    that are to come with their commands, documents.md, excepted)."""
    pending = {"docs/documents.md"}
    for base, text in [(ROOT, README), *[(ROOT / "docs", page) for page in PAGES.values()]]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            path = (base / target).resolve()
            assert path.exists() or str(path.relative_to(ROOT)) in pending, f"broken link {target} (from {base})"


TOUR = re.search(r"^<!-- tour -->\n```bash\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)


def test_readme_tour_runs(tmp_path):
    """The README's five-minute tour, as written, in an empty directory: every command in it must succeed."""
    assert TOUR, "README.md has no ```bash block after <!-- tour -->"
    script = TOUR.group(1)
    for name, _ in ALL:  # the tour shows every command
        assert f"charrnn {name}" in script, f"charrnn {name} is not in the README's tour"
    prelude = "set -euo pipefail\n"
    if shutil.which("charrnn") is None:
        prelude += f'charrnn() {{ "{sys.executable}" -m charrnn "$@"; }}\n'
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    done = subprocess.run(["bash", "-c", prelude + script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, f"the tour failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    for made in ("a.npz", "a.best.npz", "page.html", "a.safetensors", "sweep/best.npz", "scores.jsonl",
                 "series-model.npz"):  # fmt: skip
        assert (tmp_path / made).is_file(), made
