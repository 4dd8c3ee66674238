"""The training progress bar: counts steps, or seconds under a time budget; says when kernels compile.

- A run bounded by steps or epochs counts steps (total and ETA from the step rate). A run bounded only
  by `--time` counts seconds towards the budget, so it too has a total and an ETA.
- tqdm decides by itself whether to draw: nothing when stderr is not a terminal (a log file or CI keeps
  no `\\r` updates), nothing under `TQDM_DISABLE=1`; only `enabled=False` (`-q`) forces it off. Its other
  `TQDM_*` settings (e.g. `TQDM_MININTERVAL`) apply too.
- The first step of a first run compiles the kernels (about 30 s of CPU on the 2-core machine the
  benchmarks use). When numba's cache holds no compiled kernel yet, a notice says so before that step
  and the time it took after it; either way the first step's time is kept out of the rate, so the ETA is
  not hours while compiling.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

COMPILE_ESTIMATE_SECONDS = 30  # first `charrnn train` in a fresh numba cache: 31 s user time (2 cores, H=8)


def kernels_compiled() -> bool | None:
    """Whether numba's on-disk cache holds any of charrnn's compiled kernels (None: cannot tell). Looks at
    the cache index files of the kernels' dispatchers (duck-typed: no numba import here)."""
    dispatchers = [value for name, module in list(sys.modules.items()) if name.startswith("charrnn.kernels")
                   for value in vars(module).values() if hasattr(value, "_cache") and hasattr(value, "py_func")]
    directories = set()
    for dispatcher in dispatchers:
        try:
            directories.add(Path(dispatcher._cache.cache_path))
        except (AttributeError, TypeError):  # an uncached kernel
            continue
    if not directories:
        return None
    return any(any(directory.glob("*.nbi")) for directory in directories if directory.is_dir())


class TrainingBar:
    """tqdm over steps (`limit_steps`) or, with only a time budget, over seconds; see the module docstring."""

    def __init__(self, enabled: bool, limit_steps: int | None, time_budget: float | None, initial_step: int,
                 log: Callable[[str], None], file: Any = None) -> None:  # fmt: skip
        """`file`: where to draw (default stderr)."""
        options: dict[str, Any] = {"dynamic_ncols": True, "leave": False, "file": file}
        if not enabled:
            options["disable"] = True
        elif "TQDM_DISABLE" not in os.environ:  # tqdm applies TQDM_* only to arguments not passed
            options["disable"] = None  # tqdm: draw only on a terminal
        self.by_time = limit_steps is None and time_budget is not None
        if self.by_time:
            bar_format = "{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]"
            self.bar = tqdm(total=time_budget, unit="s", bar_format=bar_format, **options)
        else:
            self.bar = tqdm(total=limit_steps, initial=initial_step, unit="step", **options)
        self.log, self.first_step_started, self.noticed, self.stepped = log, None, False, False
        self.started = time.perf_counter()

    def step_starting(self) -> None:
        """Before each step; the first one may compile the kernels."""
        if self.stepped:
            return
        self.stepped = True
        if kernels_compiled() is False:
            self.log(f"compiling kernels (first run, ~{COMPILE_ESTIMATE_SECONDS} s; later runs load them from "
                     "numba's cache)")  # fmt: skip
            self.noticed = True
        self.first_step_started = time.perf_counter()

    def step_done(self, step: int, postfix: dict[str, Any]) -> None:
        """After a step: advance (by one step, or to the seconds elapsed) and show `postfix`."""
        if self.first_step_started is not None:  # the first step: its compile time stays out of the rate
            took, self.first_step_started = time.perf_counter() - self.first_step_started, None
            if self.noticed:
                self.log(f"kernels compiled in {took:.1f} s")
            self.bar.unpause()
        self.bar.set_postfix({"step": step, **postfix} if self.by_time else postfix, refresh=False)
        if self.by_time:
            self.bar.update(min(time.perf_counter() - self.started, self.bar.total) - self.bar.n)
        else:
            self.bar.update(step - self.bar.n)

    def rewind(self, step: int) -> None:
        """After a rollback to `step` (the step count goes back; time does not)."""
        if not self.by_time:
            self.bar.n = step

    def close(self) -> None:
        self.bar.close()
