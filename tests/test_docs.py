"""The manual: README's and the guides' Python blocks run as written; the reference is whole.

A block runs on its own, in a fresh folder, the way a reader pastes it: as a script with
this checkout first on ``sys.path``. An HTML comment on the line above a block changes that:

- ``<!-- docs-test: continues -->``: the block runs after the page's previous block, in the
  same script (a page read as one session);
- ``<!-- docs-test: slow -->``: the block runs in the slow set (a real study); tags combine
  (``continues slow``);
- ``<!-- docs-test: skip REASON -->``: the block needs a long study; REASON names the test
  that runs the same calls. Used sparingly.

The site itself is built strictly by ``.ci/run`` (``mkdocs build --strict``); here the
generated reference pages are checked to name every public name, measure, config key and
command.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# internal interface listings, not examples
NOT_EXAMPLES = {"CONTRACTS.md", "MEASURES.md"}
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in DOCS.glob("*.md") if p.name not in NOT_EXAMPLES),
    *sorted((DOCS / "guides").glob("*.md")),
]
_BLOCK = re.compile(
    r"(?:<!--\s*docs-test:\s*(?P<tag>[^>]*?)\s*-->\s*\n)?^```python\n(?P<code>.*?)^```",
    re.S | re.M,
)


@dataclass
class Block:
    page: Path
    line: int
    code: str
    tag: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    return [
        Block(page, text.count("\n", 0, m.start("code")), m.group("code"), m.group("tag") or "")
        for m in _BLOCK.finditer(text)
    ]


def scripts() -> list:
    """One pytest param per runnable script: a block plus the blocks it continues."""
    out = []
    for page in PAGES:
        chain: list[Block] = []
        for block in blocks(page):
            chain = [*chain, block] if "continues" in block.tag.split() else [block]
            if block.tag.startswith("skip"):
                continue
            marks = [pytest.mark.slow] if any("slow" in b.tag.split() for b in chain) else []
            out.append(pytest.param(list(chain), id=block.id, marks=marks))
    return out


@pytest.mark.parametrize("chain", scripts())
def test_python_block_runs_as_written(chain: list[Block], tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text("\n".join(b.code for b in chain))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"{chain[-1].id} failed:\n{proc.stderr[-3000:]}"


def test_skipped_blocks_say_which_test_runs_them() -> None:
    tests = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    for page in PAGES:
        for block in blocks(page):
            if block.tag.startswith("skip"):
                named = set(re.findall(r"(test_\w+\.py)", block.tag))
                assert named and named <= tests, f"{block.id}: skip names no existing test"


def test_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert not [b for b in blocks(ROOT / "README.md") if b.tag.startswith("skip")]
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "python -m pytest" in line)
    after_venv = command.split(" && ", 2)[2]  # past `python3 -m venv X && . X/bin/activate`
    ci = (ROOT / ".ci" / "run").read_text()
    assert after_venv in ci.splitlines()
    docs_command = next(line for line in readme.splitlines() if "mkdocs build --strict" in line)
    assert docs_command.split(" && ", 3)[3] in ci  # the site's build, past venv and torch


def test_every_guide_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in [*DOCS.glob("*.md"), *(DOCS / "guides").glob("*.md")]:
        assert str(page.relative_to(DOCS)) in nav, f"{page} is not in mkdocs.yml's nav"


# --- the generated reference --------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("docs_reference", DOCS / "_gen" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_names_every_public_name(reference) -> None:
    import ensemble_lens

    page = reference.api_page()
    for name in ensemble_lens.__all__:
        if name != "__version__":
            assert re.search(rf"^::: ensemble_lens\.[\w.]+\.{name}$", page, re.M), name


def test_measures_reference_names_every_measure(reference) -> None:
    from ensemble_lens.similarity import measure_names

    page = reference.measures_page()
    for name, _ in measure_names():
        assert f"| `{name}` |" in page


def _keys(model, prefix=""):
    """Every key path of a config model: nested sections by dots, list items by ``[]``."""
    for name, field in model.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        yield key
        for inner, suffix in _models(field.annotation):
            yield from _keys(inner, key + suffix)


def _models(tp, suffix=""):
    from pydantic import BaseModel

    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield tp, suffix
        return
    inner = suffix + "[]" if typing.get_origin(tp) is list else suffix
    for arg in typing.get_args(tp):
        yield from _models(arg, inner)


def test_config_reference_names_every_key_with_its_default(reference) -> None:
    from ensemble_lens.config import StudyConfig

    page = reference.config_page()
    keys = list(_keys(StudyConfig))
    assert len(keys) > 100
    for key in keys:
        assert f"| `{key}` |" in page, key
    assert "| `consensus.n_null` | int | `20` | >= 1 |" in page
    assert "`task[]" not in page and "| `ensemble.ingest[].kind` |" in page
    assert "| `distill.backend` | 'operon' \\| 'sparse' \\| 'pysr' | `'operon'` |" in page


def test_cli_reference_names_every_command(reference) -> None:
    from ensemble_lens import cli

    page = reference.cli_page()
    commands = ["run", "train", "record", "compare", "consensus", "distill", "templates"]
    for name in [*commands, "inspect", "report", "measures"]:
        assert f"## `ensemble-lens {name}`" in page
        assert f"usage: ensemble-lens {name}" in page
    assert set(cli._STAGE_COMMANDS) <= set(commands)
