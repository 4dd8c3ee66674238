"""The documented Python API: `from charrnn import ...` works, stays lazy, and the README's examples run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_models import markov_text

import charrnn

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = [README, *(path.read_text(encoding="utf-8") for path in sorted((ROOT / "docs").glob("*.md")))]
# the README's blocks first (they train model.npz), then every docs/ page's, in name order
PYTHON_BLOCKS = [block for page in PAGES
                 for block in re.findall(r"^```python\n(.*?)^```", page, flags=re.MULTILINE | re.DOTALL)]  # fmt: skip
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # the subprocesses import this checkout


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_documented_names_import():
    from charrnn import Model, ModelConfig, TrainConfig, load_model, sample, score_text, train  # noqa: F401

    assert callable(train) and train.__module__ == "charrnn.train"
    assert set(charrnn.__all__) >= {"Model", "ModelConfig", "TrainConfig", "train", "load_model", "sample",
                                    "score_text", "prepare_data", "attribute", "Vocab", "CharrnnError"}  # fmt: skip
    for name in charrnn.__all__:
        assert getattr(charrnn, name) is not None and name in dir(charrnn)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        charrnn.nonsense  # noqa: B018


def test_import_is_lazy_and_train_is_the_function_whatever_was_imported_first():
    loaded = run_python("import sys, charrnn; print(sorted(m for m in sys.modules if m.startswith(('numpy', 'numba',"
                        " 'charrnn.'))))")  # fmt: skip
    assert loaded.strip() == "['charrnn.errors']"  # numpy, numba, the model: none until a name needs them
    for first in ("import charrnn.train", "from charrnn.train import TrainConfig", "from charrnn import TrainConfig",
                  "import charrnn.cli"):  # fmt: skip
        out = run_python(f"{first}\nimport charrnn\nfrom charrnn import train\nprint(train is charrnn.train, "
                         "type(train).__name__)")  # fmt: skip
        assert out.split() == ["True", "function"], first


def test_package_ships_py_typed():
    assert (ROOT / "charrnn" / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+; charrnn supports 3.10)
    package_data = re.search(r"^\[tool\.setuptools\.package-data\]\ncharrnn = (\[.*\])$", pyproject, re.MULTILINE)
    assert package_data and '"py.typed"' in package_data.group(1)


def test_readme_python_examples_run(tmp_path, capsys):
    """Every ```python block of the README and then of the docs/ pages, in order, in one directory (the test's
    own, see conftest) with a small corpus and text."""
    assert len(PYTHON_BLOCKS) >= 2
    alphabet = "abcdefghilmnorstu ,.ROMEO:\n"
    (tmp_path / "corpus.txt").write_text(markov_text(30_000, alphabet, chain_seed=3), encoding="utf-8")
    (tmp_path / "play.txt").write_text(markov_text(2_000, alphabet, chain_seed=3, sample_seed=1), encoding="utf-8")
    rng = np.random.default_rng(5)  # names.txt for docs/documents.md: 1,500 short lowercase names
    names = ["".join(rng.choice(list("aeioulmnrstkz"), rng.integers(3, 8))) for _ in range(1500)]
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    for index, block in enumerate(PYTHON_BLOCKS):
        where = f"python block {index + 1} (README.md, then docs/*.md)"
        exec(compile(block, where, "exec"), {"__name__": "__readme__"})
    assert (tmp_path / "model.npz").is_file()
    assert capsys.readouterr().out.strip()  # the examples print what they computed
