"""A read-only store and a full disk, on real mounts.

Tests run as root, and root ignores permission bits, so a read-only store is a read-only bind
mount and a full disk is a tiny tmpfs; both need ``mount`` (root in a container that allows
it) and are skipped, saying why, where it is refused.
"""

from __future__ import annotations

import contextlib
import subprocess

import pytest
from conftest import run_cli
from fault_tasks import fault_config

from ensemble_lens import open_store, run_study
from ensemble_lens.cli import main
from ensemble_lens.record.verify import verify_store


def _mount(*args):
    proc = subprocess.run(["mount", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(
            f"mount {' '.join(map(str, args))} is not permitted here: {proc.stderr.strip()}"
        )


@contextlib.contextmanager
def _mounted(target):
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


def _stamps(store):
    return {
        m: (store / "models" / m / "zarr.json").stat().st_mtime_ns
        for m in open_store(store).complete_models
    }


@pytest.mark.slow
def test_read_only_store(tmp_path, write_config, capsys):
    store = tmp_path / "s.zarr"
    cfg = fault_config(store)
    run_study(cfg, stages=["probe", "train"])
    before = _stamps(store)
    ro = tmp_path / "ro.zarr"
    ro.mkdir()
    _mount("--bind", store, ro)
    with _mounted(ro):
        _mount("-o", "remount,ro,bind", ro)
        path = write_config(cfg)
        assert main(["run", str(path), "--store", str(ro)]) == 4
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == (
            f"error: store {ro} is on a read-only file system; a run needs to write it "
            "(inspect and report only read: they work on it)"
        )
        assert main(["inspect", str(ro)]) == 0  # readers need no lock
        assert main(["inspect", "--verify", str(ro)]) == 0
        assert "every chunk of every array and every content digest" in capsys.readouterr().out
    assert main(["run", str(path)]) == 0  # the same study, writable: finishes, nothing lost
    assert _stamps(store) == before
    assert open_store(store).read_formulas()


@pytest.mark.slow
def test_disk_full_then_rerun(tmp_path, write_config):
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=96k", "tmpfs", disk)
    with _mounted(disk):
        store = disk / "s.zarr"
        path = write_config(fault_config(store))
        code, _, err = run_cli("train", path)
        line = err.strip().splitlines()[-1]
        assert code == 4, err[-2000:]
        assert line.startswith("error: ") and "no space left on" in line.lower()
        assert line.endswith(
            "finished work is kept in the store: fix this and run the same command again"
        )
        assert "Traceback" not in err
        kept = _stamps(store) if (store / "zarr.json").exists() else {}
        _mount("-o", "remount,size=16m", disk)  # space freed
        code, _, err = run_cli("train", path)
        assert code == 0, err[-2000:]
        s = open_store(store)
        assert s.complete_models == ["s0", "s1"]
        assert {m: t for m, t in _stamps(store).items() if m in kept} == kept
        assert verify_store(s) == []
