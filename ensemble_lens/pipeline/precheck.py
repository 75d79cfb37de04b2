"""Checks of a run's inputs against each other and against the store, before anything is
written: the study name, the store path, one study per store, the probe (its file, its size)
and the ingested members measured against it.

A probe that is not in the store yet is built in a temporary store outside the study (deleted
after), so the members are checked on the very probe the run will write, and a failed check
leaves the user's directories as they were.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..config import StudyConfig
from ..errors import ConfigError, StoreError
from ..record.store import StudyStore, open_store

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: fit and test rows the consensus needs at least (consensus.core checks the same)
MIN_SPLIT_ROWS = 3
#: stages that fit a consensus on the probe's fit/test split
_SPLIT_STAGES = ("consensus", "distill", "templates")


def check_study_name(cfg: StudyConfig) -> None:
    """The study name is one safe path component (it names ``runs/<name>/study.zarr``)."""
    if not _SAFE_NAME.match(cfg.name) or cfg.name in (".", ".."):
        raise ConfigError(
            f"name {cfg.name!r}: expected one path component of letters, digits, '_', '.' "
            "and '-' starting with a letter or digit (the default store is "
            "runs/<name>/study.zarr)"
        )


def check_store_path(path: Path) -> None:
    """The store path is a directory or can be made one: the nearest existing folder above
    it is a folder, and nothing on the way is a regular file."""
    if path.is_file():
        raise StoreError(
            f"store {path}: expected a study store directory (or a path to create one), "
            "got a regular file"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StoreError(f"store {path}: {parent} is a regular file, not a folder")
            return


def check_same_study(
    cfg: StudyConfig, path: Path, members: Sequence[Any], *, add_members: bool
) -> None:
    """A store holds one study: refuse a config whose task, probe or members differ from the
    config that made the store (members may be added with ``add_members``)."""
    if not (path / "zarr.json").is_file():
        return
    attrs = open_store(path, mode="r").study_attrs()
    old = attrs.get("config")
    if not old:
        return
    new = cfg.model_dump(mode="json")
    diffs = _diff("task", old.get("task"), new.get("task"))
    diffs += _diff("probe", _probe_part(old.get("probe")), _probe_part(new.get("probe")))
    if diffs:
        raise ConfigError(
            f"store {path} holds the study made by config {attrs.get('config_sha256', '')[:12]} "
            f"with another task or probe ({'; '.join(diffs[:4])}); a store holds one study: "
            "give this config a store of its own (--store PATH, or 'store:' in the config)"
        )
    stored = [e["id"] for e in attrs.get("members") or [] if isinstance(e, dict)]
    if not stored:
        return
    ids = [m.id for m in members]
    added = [m for m in ids if m not in stored]
    left_out = [m for m in stored if m not in ids]
    if left_out or (added and not add_members):
        said = []
        if added:
            said.append(f"adds {_few(added)}")
        if left_out:
            said.append(f"leaves out {_few(left_out)}")
        hint = (
            "; to add members to this study pass --add-members (the store keeps every "
            "member and records both configs)"
            if added and not left_out
            else ""
        )
        raise ConfigError(
            f"store {path} holds the study of members {_few(stored)}; this config "
            f"{' and '.join(said)}: give it a store of its own (--store PATH, or 'store:' in "
            f"the config){hint}"
        )


def _probe_part(dump: Any) -> dict[str, Any]:
    """The probe settings that decide what members see (all but the truth columns)."""
    return {k: v for k, v in dict(dump or {}).items() if k != "truth"}


def _diff(section: str, old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [f"{section}: {old!r} in the store, {new!r} here"]
    keys = sorted(set(old) | set(new))
    return [  # a key the store's config lacks was added to the package since: not a change
        f"{section}.{k}: {old.get(k)!r} in the store, {new.get(k)!r} here"
        for k in keys
        if k in old and _unset(old.get(k)) != _unset(new.get(k))
    ]


def _unset(value: Any) -> Any:
    """None, [] and {} all mean "not set"."""
    return None if value in (None, [], {}) else value


def _few(ids: Sequence[str], n: int = 6) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def check_probe_and_members(
    cfg: StudyConfig,
    task: Any,
    path: Path,
    wanted: Sequence[str],
    members: Sequence[Any],
    redo: Sequence[str],
) -> None:
    """The probe the run will use (the store's, or the one the probe stage would write,
    built in a temporary store) has the rows the split needs, a probe file parses, and
    every ingested member the run records fits it."""
    if "probe" not in wanted:
        return
    with _probe_to_use(cfg, task, path, redo) as (store, where):
        if store is None:
            return
        if any(s in wanted for s in _SPLIT_STAGES):
            split = store.probe()["split"].values
            n_fit, n_test = int((split == "fit").sum()), int((split == "test").sum())
            if min(n_fit, n_test) < MIN_SPLIT_ROWS:
                raise ConfigError(
                    f"{where}: {n_fit + n_test} rows ({n_fit} fit, {n_test} test); the "
                    f"consensus needs at least {MIN_SPLIT_ROWS} fit and {MIN_SPLIT_ROWS} test "
                    "rows: give a larger probe (or a test_fraction that leaves both)"
                )
        if "distill" in wanted and cfg.distill.dimensions is not None:
            check_dimensions(cfg, list(store.probe_names))
        if "record" in wanted or "train" in wanted:
            _check_ingested(cfg, store, members, redo, path)


def check_dimensions(cfg: StudyConfig, probe_names: Sequence[str]) -> None:
    """``distill.dimensions`` gives a unit to every formula variable and to nothing else, and
    each target unit is a product of powers of theirs."""
    dcfg = cfg.distill
    assert dcfg.dimensions is not None
    variables = list(dcfg.variables or probe_names)
    extra = sorted(set(dcfg.dimensions.variables) - set(variables))
    if extra:
        raise ConfigError(
            f"distill.dimensions: variables {extra} are not formula variables (expected some "
            f"of {variables})"
        )
    dims = dcfg.dimensions.dimensions()
    try:
        for j in range(len(dims.targets)):
            dims.for_component(j, len(dims.targets)).view(variables, j)
    except ConfigError as err:
        raise ConfigError(f"distill.{err}") from None


@contextlib.contextmanager
def _probe_to_use(
    cfg: StudyConfig, task: Any, path: Path, redo: Sequence[str]
) -> Iterator[tuple[StudyStore | None, str]]:
    """The store holding the probe this run will read: the study's when its probe is up to
    date, else a temporary one the probe is written into here; and how to name the probe."""
    from .stages import StageContext, probe_tag, stage_probe

    where = f"probe file {cfg.resolve(cfg.probe.path)}" if cfg.probe.path else "probe"
    if cfg.probe.path is None:
        where = f"probe (probe.n {cfg.probe.n}, test_fraction {cfg.probe.test_fraction})"
    if (path / "zarr.json").is_file() and "probe" not in redo:
        store = open_store(path, mode="r")
        if store.has_probe() and store.study_attrs().get("probe_tag") == probe_tag(cfg):
            yield store, where
            return
        if task is None and cfg.probe.path is None:
            yield (store if store.has_probe() else None), where
            return
    elif task is None and cfg.probe.path is None:
        yield None, where
        return
    with tempfile.TemporaryDirectory(prefix="ensemble-lens-probe-") as tmp:
        temp = open_store(Path(tmp) / "probe.zarr", mode="w")
        stage_probe(StageContext(cfg, temp, task, executor=None))
        yield temp, where


def _check_ingested(
    cfg: StudyConfig, probe_store: StudyStore, members: Sequence[Any], redo: Sequence[str],
    path: Path,
) -> None:  # fmt: skip
    """Every ingested member not already recorded (or named in ``redo``) fits the probe."""
    from .members import is_done, preflight

    done: set[str] = set()
    if (path / "zarr.json").is_file():
        store = open_store(path, mode="r")
        done = {m.id for m in members if m.id not in redo and is_done(store, m)}
    todo = [m for m in members if m.source == "ingested" and m.id not in done]
    preflight(cfg, probe_store, todo)
