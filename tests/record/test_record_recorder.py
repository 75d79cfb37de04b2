import numpy as np
import pytest
import torch

from ensemble_lens import open_store, record_activations
from ensemble_lens.errors import ShapeError


def _mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 2),
    )


def test_record_bit_identical_and_skip(probe_store):
    x = torch.from_numpy(probe_store.probe()["inputs"].values)
    models = [_mlp(s) for s in range(3)]
    for i, m in enumerate(models):
        res = record_activations(
            m, probe_store, f"mlp{i}", ["0", "2", "4"], batch_size=128, attrs={"seed": i}
        )
        assert res.action == "recorded" and res.widths == {"0": 32, "2": 16, "4": 2}
    store = open_store(probe_store.path)
    for i, m in enumerate(models):
        with torch.no_grad():
            expected = {"0": m[0](x), "2": m[2](m[1](m[0](x))), "4": m(x)}
        for layer, ref in expected.items():
            assert np.array_equal(store.activations(f"mlp{i}", layer).values, ref.numpy())
    assert record_activations(models[0], probe_store, "mlp0", ["0"]).action == "skipped"
    assert (
        record_activations(models[1], probe_store, "mlp0", ["0"], overwrite=True).action
        == "recorded"
    )


def test_hooks_removed_and_mode_restored(probe_store):
    m = _mlp(0).train()
    record_activations(m, probe_store, "m", ["0", "2"])
    assert m.training
    assert all(not mod._forward_hooks for mod in m.modules())


def test_hooks_removed_after_error(probe_store):
    m = _mlp(0)

    def bad_input(batch):
        raise RuntimeError("adapter failed")

    with pytest.raises(RuntimeError, match="adapter failed"):
        record_activations(m, probe_store, "m", ["0"], input_fn=bad_input)
    assert all(not mod._forward_hooks for mod in m.modules())
    assert probe_store.status("m") == "missing"


def test_unknown_layer_lists_close_names(probe_store):
    with pytest.raises(
        ShapeError, match=r"model 'm': no layer named 'O'; closest valid names: '0'"
    ):
        record_activations(_mlp(0), probe_store, "m", ["O"])


def test_non_finite_activations_named(probe_store):
    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            return torch.log(self.lin(x))  # negative inputs -> NaN

    m = Bad()
    with pytest.raises(
        ShapeError, match=r"model 'bad' layer 'output': \d+ non-finite activation values"
    ):
        record_activations(m, probe_store, "bad", [""])
    assert probe_store.status("bad") == "missing"


def test_input_fn_and_tuple_outputs(probe_store):
    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.LSTM(1, 4, batch_first=True)

        def forward(self, seq, scale):
            return self.enc(seq * scale)

    model = TwoInputs()
    record_activations(
        model, probe_store, "lstm", ["enc"], input_fn=lambda b: (b[:, :, None], torch.tensor(2.0))
    )
    acts = probe_store.activations("lstm", "enc")
    assert acts.shape == (1000, 3 * 4)  # (batch, seq=3, hidden=4) flattened
    with torch.no_grad():
        x = torch.from_numpy(probe_store.probe()["inputs"].values)
        ref = model.enc(x[:, :, None] * 2.0)[0].reshape(1000, -1)
    assert np.array_equal(acts.values, ref.numpy())


def test_batch_dim_mismatch_is_clear(probe_store):
    class Pool(torch.nn.Module):
        def forward(self, x):
            return x.sum(0)

    with pytest.raises(ShapeError, match="expected an output with 1000 rows"):
        record_activations(torch.nn.Sequential(Pool()), probe_store, "p", ["0"])
