"""Typer options generated from the config dataclasses (charrnn/config.py): each option's flag, default,
help text and rule are written there once.

`@config_options(ModelConfig, TrainConfig, ...)` gives a command one keyword parameter per field that has a
flag, defaulting to the config's default; the command receives them in `**options` and asks
`given(ctx, options, cls)` which of them the user actually typed (a resumed run keeps the recorded value of
the others).
"""

from __future__ import annotations

import enum
import functools
import inspect
import shlex
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import Option, option_specs

# parameter name -> (config class, field name), for every option added by config_options
_FIELDS: dict[str, tuple[type, str]] = {}


def escape(text: str) -> str:
    """Help text as Typer shows it literally (its rich markup would eat "[plot]" or "[default: 1]")."""
    try:
        from rich.markup import escape as rich_escape
    except ImportError:  # pragma: no cover - typer installs rich; without it help is not markup
        return text
    return rich_escape(text)


def param_name(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _cli_type(hint: Any, spec: Option) -> Any:
    if spec.path:
        return Path
    if spec.parse is not None:
        return str
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def choice_type(name: str, choices: tuple[str, ...]) -> type[enum.Enum]:
    """A str Enum of `choices`: Typer shows them in help and refuses anything else as a usage error."""
    return enum.Enum(name, [(choice, choice) for choice in choices], type=str)  # type: ignore[return-value]


def _parameter(cls: type, name: str, spec: Option, hint: Any, default: Any) -> inspect.Parameter:
    kind = _cli_type(hint, spec)
    if spec.parse is not None:
        default = spec.shown_default
    if spec.choices:
        kind = choice_type(param_name(spec.flag).title().replace("_", ""), spec.choices)
        default = kind(default)
    if default is None:
        kind = kind | None
    info = typer.Option(
        spec.flag, help=escape(spec.help), rich_help_panel=spec.panel or None,
        show_default=spec.shown_default if spec.shown_default is not None else default is not None,
    )  # fmt: skip
    _FIELDS[param_name(spec.flag)] = (cls, name)
    return inspect.Parameter(param_name(spec.flag), inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[kind, info])  # fmt: skip


def config_options(*classes: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: add the flagged fields of `classes` as keyword options of a command taking `**options`."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        for cls in classes:
            hints = typing.get_type_hints(cls)
            defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
            for name, spec in option_specs(cls).items():
                if spec.flag is not None:
                    params.append(_parameter(cls, name, spec, hints[name], defaults.get(name)))

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            return command(**kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def command_line(ctx: typer.Context) -> str:
    """The command as the user gave it, rebuilt from what was parsed (arguments, then the options given,
    in declaration order), shell-quoted: what a checkpoint records of the run that wrote it."""
    words = ctx.command_path.split()
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            continue
        value = ctx.params.get(param.name)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        values = [v.value if isinstance(v, enum.Enum) else v for v in values]
        if param.param_type_name == "argument":
            words += [str(v) for v in values]
        elif getattr(param, "is_flag", False):
            words += [param.opts[-1]] if value else []
        else:
            for v in values:
                words += [param.opts[-1], str(v)]
    return shlex.join(words)


def given(ctx: typer.Context, options: dict[str, Any], cls: type) -> dict[str, Any]:
    """{field: value} of the options of `cls` that the user typed (paths as strings)."""
    out = {}
    for name, value in options.items():
        owner, field_name = _FIELDS[name]
        source = ctx.get_parameter_source(name)
        if owner is cls and source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            spec = option_specs(cls)[field_name]
            if isinstance(value, enum.Enum):
                value = value.value
            out[field_name] = spec.parse(value) if spec.parse else str(value) if isinstance(value, Path) else value
    return out
