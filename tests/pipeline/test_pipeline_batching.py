"""Members in batches per executor task (members_per_task), the vmap train mode, resume."""

from __future__ import annotations

import numpy as np
import pytest
from user_tasks import tiny_config

from ensemble_lens import open_store, run_study
from ensemble_lens.errors import ConfigError, ExecutionError
from ensemble_lens.execution import SerialExecutor
from ensemble_lens.pipeline.batching import batch_members
from ensemble_lens.pipeline.members import MemberSpec


class CountingExecutor(SerialExecutor):
    """The real serial executor, counting the tasks it is given."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def submit(self, fn, *args, key=None, **kwargs):
        self.keys.append(key)
        return super().submit(fn, *args, key=key, **kwargs)


def test_batch_members_sizes_groups_and_errors():
    a = [MemberSpec(f"a{i}", "trained", i, arch={"w": 1}) for i in range(5)]
    b = [MemberSpec(f"b{i}", "trained", i, arch={"w": 2}) for i in range(3)]
    mixed = [m for pair in zip(a, b, strict=False) for m in pair] + a[3:]
    batches = batch_members(mixed, per_task=4)
    assert [len(x) for x in batches] == [4, 4]
    assert {m.id for x in batches for m in x} == {m.id for m in mixed}
    assert {m.arch["w"] for m in batches[0]} == {1}  # alike members side by side
    auto = batch_members([MemberSpec(f"s{i}", "trained", i) for i in range(1000)], n_workers=2)
    assert len(auto) == 16 and max(len(x) for x in auto) == 64  # 4 per worker, capped at 64
    assert batch_members([], per_task=3) == []
    with pytest.raises(ValueError, match="members_per_task: expected an integer >= 1, got 0"):
        batch_members(a, per_task=0)


def test_members_per_task_is_validated_in_the_config(tmp_path, user_task_path):
    with pytest.raises(ConfigError, match=r"execution\.members_per_task"):
        run_study(tiny_config(tmp_path / "x.zarr", execution={"members_per_task": 0}))


@pytest.mark.slow
def test_batched_vmap_study_matches_per_member_and_resumes_per_member(tmp_path, user_task_path):
    ens = {"seeds": [0, 1, 2, 3], "untrained_null": True}
    stages = ["probe", "train"]
    run_study(tiny_config(tmp_path / "ref.zarr", ensemble=ens), stages=stages)
    ex = CountingExecutor()
    vm = {"scheduler": "serial", "members_per_task": 3, "train_mode": "vmap"}
    cfg = tiny_config(tmp_path / "vm.zarr", ensemble={**ens, "seeds": [0, 1]}, execution=vm)
    run_study(cfg, executor=ex, stages=stages)
    assert len(ex.keys) == 2  # 4 members (2 trained + 2 null) in batches of 3
    cfg = tiny_config(tmp_path / "vm.zarr", ensemble=ens, execution=vm)
    ex = CountingExecutor()
    result = run_study(cfg, executor=ex, stages=stages, add_members=True)  # s2, s3 join
    built = {r["id"]: r["action"] for r in result.outcomes["train"]}
    assert built == {"s2": "trained (vmap)", "s3": "trained (vmap)", "null-s2": "untrained",
                     "null-s3": "untrained"}  # fmt: skip
    assert len(ex.keys) == 2
    ref, got = open_store(tmp_path / "ref.zarr"), open_store(tmp_path / "vm.zarr")
    assert got.complete_models == ref.complete_models
    for m in ref.complete_models:
        a, b = (s.activations(m, "latent").values for s in (ref, got))
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)
        if not m.startswith("null-"):
            va, vb = (s.model_attrs(m)["metrics"]["val_r2"] for s in (ref, got))
            assert vb == pytest.approx(va, abs=1e-5)


def test_a_failing_member_fails_the_study_but_not_its_batch(tmp_path, user_task_path):
    cfg = tiny_config(
        tmp_path / "f.zarr",
        ensemble={"seeds": [0, 1], "train": {"batch_size": 5000}, "untrained_null": True},
        execution={"scheduler": "serial", "members_per_task": 4},
    )
    with pytest.raises(ExecutionError, match=r"2 of 4 members failed: s0: ConfigError: .*batch_s"):
        run_study(cfg, stages=["probe", "train"])
    assert open_store(tmp_path / "f.zarr").complete_models == ["null-s0", "null-s1"]
