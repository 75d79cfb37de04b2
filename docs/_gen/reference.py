"""Write the generated reference pages at build time (mkdocs-gen-files).

Every page here is read from the code, so it cannot fall behind it: the public API from
``ensemble_lens.__all__`` (rendered by mkdocstrings from the numpydoc docstrings), every
measure name from the registry table, every config key from the pydantic models, and every
CLI command from the argparse parser.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
import typing
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel

# the checkout being documented, also when another copy is installed
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ensemble_lens
from ensemble_lens import cli, config
from ensemble_lens.similarity import measure_names


def _write(path: str, text: str) -> None:
    import mkdocs_gen_files  # only at build time; the tests import the page functions

    with mkdocs_gen_files.open(path, "w") as f:
        f.write(text)


# --- the public API ---------------------------------------------------------------------------


def api_page() -> str:
    by_module: dict[str, list[str]] = defaultdict(list)
    for name in ensemble_lens.__all__:
        if name != "__version__":
            by_module[ensemble_lens._LAZY[name]].append(name)
    out = [
        "# Public API",
        "",
        "Everything `import ensemble_lens as el` offers (`el.__all__`), grouped by the module",
        "that defines it; generated from the numpydoc docstrings. Importing the package is",
        "light: each name loads its module on first use.",
        "",
    ]
    for module in sorted(by_module):
        out += [f"## `{module}`", ""]
        for name in by_module[module]:
            out += [f"::: {module}.{name}", "    options:", "      heading_level: 3", ""]
    return "\n".join(out)


# --- measures ---------------------------------------------------------------------------------


def measures_page() -> str:
    rows = measure_names()
    out = [
        "# Every measure name",
        "",
        f"The registry's {len(rows)} names, one line each, as `ensemble-lens measures` prints",
        "them. Each works in `el.measure(name)(X, Y)`, `el.pairwise(inputs, name)` and a study's",
        "`similarity.metrics`. Parameters, papers, invariances and the shared work per family:",
        "[the measures table](../MEASURES.md).",
        "",
        "| name | what it gives |",
        "|---|---|",
    ]
    out += [f"| `{name}` | {text.replace('|', '/')} |" for name, text in rows]
    return "\n".join(out) + "\n"


# --- config keys ------------------------------------------------------------------------------

_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "length >="}


def _type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type(typing.get_args(tp)[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " \\| ".join(_type(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(section)"
        return f"`{value!r}`"
    return f"`{field.default!r}`"


def _bounds(field: Any) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sign in _BOUNDS.items():
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return ", ".join(parts)


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the ``#:`` comment above it and the ``#`` comment beside it."""
    notes: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(model).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"\s{4}(\w+)\s*:[^#]*(?:#\s*(.*))?$", line)
        if match and match.group(1) in model.model_fields:
            text = " ".join([*pending, match.group(2) or ""]).strip()
            notes[match.group(1)] = text
        pending = []
    return notes


def _sections(tp: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    """The config sections inside a field's type: ``Model``, ``Model | None``, ``list[Model]``
    (its key gets ``[]``: each item of the list)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [(tp, suffix)]
    inner = suffix + "[]" if typing.get_origin(tp) is list else suffix
    return [found for arg in typing.get_args(tp) for found in _sections(arg, inner)]


def _rst(text: str) -> str:
    """Sphinx roles and double backticks as markdown code."""
    return re.sub(r"(?::\w+:)?``?([^`]+)``?", r"`\1`", text)


def _section(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    doc = _rst(inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].replace("\n", " "))
    title = f"`{prefix}`" if prefix else "top level"
    out += [f"## {title}", "", doc, "", "| key | type | default | bounds | meaning |"]
    out += ["|---|---|---|---|---|"]
    notes = _comments(model)
    nested: list[tuple[type[BaseModel], str]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        note = _rst(field.description or notes.get(name, "")).replace("|", "/")
        kind = _type(field.annotation)
        out.append(f"| `{key}` | {kind} | {_default(field)} | {_bounds(field)} | {note} |")
        nested += [(sub, key + suffix) for sub, suffix in _sections(field.annotation)]
    out.append("")
    for sub_model, key in nested:
        _section(sub_model, key, out)


def config_page() -> str:
    out = [
        "# Config keys",
        "",
        "Every key of a study config (YAML, a dict, or `el.StudyConfig`), with its type,",
        "default and bounds, read from the pydantic models in `ensemble_lens/config.py`.",
        "Unknown keys are errors that name their YAML path and the closest valid key.",
        "An execution profile (`--profile`) is an `execution` section on its own.",
        "",
    ]
    _section(config.StudyConfig, "", out)
    return "\n".join(out)


# --- the CLI ----------------------------------------------------------------------------------


def cli_page() -> str:
    os.environ["COLUMNS"] = "88"  # argparse wraps --help to the terminal; fix it
    parser = cli._parser()
    out = [
        "# Command line",
        "",
        "Every command of `ensemble-lens`, with its `--help` as argparse prints it.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
        "",
    ]
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        out += [f"## `ensemble-lens {name}`", "", sub.description or "", "", "```text"]
        out += [sub.format_help().rstrip(), "```", ""]
    out += [
        "Exit codes: 0 done; 1 an unexpected error (or damage found by `inspect --verify`);",
        "2 bad input (config, paths, store contents); 3 the store is in use by another run;",
        "4 the operating system refused a write; 130 interrupted.",
        "",
    ]
    return "\n".join(out)


PAGES = {
    "reference/api.md": api_page,
    "reference/measures.md": measures_page,
    "reference/config.md": config_page,
    "reference/cli.md": cli_page,
}

if __name__ in ("__main__", "<run_path>"):  # mkdocs-gen-files runs this file as a script
    for _path, _page in PAGES.items():
        _write(_path, _page())
