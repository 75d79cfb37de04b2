"""``execution.device`` reaches the moments pass of the compare and consensus stages: the torch
path (here ``torch-cpu``) gives the numpy path's results; ``cuda`` without CUDA is one clear
error before anything is written."""

import shutil

import numpy as np
import pytest
import torch
from user_tasks import tiny_config

from ensemble_lens import open_store, run_study
from ensemble_lens.errors import BackendUnavailableError
from ensemble_lens.execution import make_executor
from ensemble_lens.similarity._device import TorchSums


@pytest.mark.slow
def test_torch_path_in_compare_and_consensus_gives_the_numpy_results(
    tmp_path, user_task_path, monkeypatch
):
    base = tmp_path / "cpu.zarr"
    run_study(tiny_config(base), stages=["probe", "train", "record"])
    shutil.copytree(base, tmp_path / "torch.zarr")
    stages = ["compare", "consensus"]
    run_study(tiny_config(base), stages=stages)
    rows = []  # spy: the chunks the torch accumulators receive (the real method runs)
    real = TorchSums.add
    spy = lambda s, a, b=None: rows.append(len(a[0])) or real(s, a, b)  # noqa: E731
    monkeypatch.setattr(TorchSums, "add", spy)
    cfg = tiny_config(tmp_path / "torch.zarr", execution={"device": "torch-cpu"})
    res = run_study(cfg, stages=stages)
    assert res.outcomes == {"compare": {"latent": "written"}, "consensus": {"latent": "written"}}
    a, b = open_store(base), open_store(tmp_path / "torch.zarr")
    n_fit = int((a.probe()["split"].values == "fit").sum())
    # compare: one block of the 3 members (all probe rows); consensus: the fit rows
    assert sum(rows) == a.n_samples + n_fit
    sa, sb = a.read_result("similarity", "latent"), b.read_result("similarity", "latent")
    for var in ("linear_cka", "procrustes_similarity"):
        np.testing.assert_allclose(sb[var].values, sa[var].values, rtol=1e-10, atol=1e-12)
    ca, cb = a.read_result("consensus", "latent"), b.read_result("consensus", "latent")
    np.testing.assert_array_equal(cb["is_consensus"].values, ca["is_consensus"].values)
    np.testing.assert_allclose(
        np.abs(cb["components"].values), np.abs(ca["components"].values), rtol=1e-6, atol=1e-8
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_error_before_anything_is_written(tmp_path, user_task_path):
    store = tmp_path / "s.zarr"
    cfg = tiny_config(store, execution={"device": "cuda"})
    msg = r"^execution\.device: 'cuda' asked for, but torch .* sees no CUDA device; use 'auto'"
    with pytest.raises(BackendUnavailableError, match=msg):
        run_study(cfg)
    with pytest.raises(BackendUnavailableError, match=msg), make_executor("serial") as ex:
        run_study(cfg, executor=ex, stages=["compare"])
    assert not store.exists()
