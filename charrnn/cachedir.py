"""Where charrnn keeps what it can rebuild: the one cache-directory rule of the package.

    $XDG_CACHE_HOME/charrnn     when XDG_CACHE_HOME is an absolute path
    ~/.cache/charrnn            otherwise (the XDG Base Directory spec says a relative value is invalid
                                and must be ignored)

Below it, `ids/` holds encoded corpora (idcache.py) and `<name>/` downloaded corpora (corpora.py).
`charrnn train --cache-dir DIR` replaces the `ids/` directory, `charrnn corpus get --cache-dir DIR` the
whole root. The library and the CLI both call these functions, so a script that trains from Python finds
the same cache as the command line. This is the one module that reads the environment for a default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_home(environ: Mapping[str, str] | None = None) -> Path:
    """The charrnn cache root (see the module docstring); `environ` defaults to `os.environ`."""
    environ = os.environ if environ is None else environ
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "charrnn"


def ids_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where encoded corpora are cached by default: `<cache_home>/ids`."""
    return cache_home(environ) / "ids"
