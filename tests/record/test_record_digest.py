"""Content digests written with every member layer and the probe (issue 21)."""

from __future__ import annotations

import numpy as np

from ensemble_lens import open_store
from ensemble_lens.record.store import stored_digest
from ensemble_lens.record.writers import activation_digest


def test_layer_digests_are_the_content_written(tmp_path):
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(np.arange(3000, dtype=np.float32).reshape(1500, 2))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1500, 300)), rng.normal(size=(1500, 4))
    store.write_activations("m", "a", a)  # several chunks of 1024 rows, appended in blocks
    store.write_activations("m", "b", b)  # added to the stored model: both digests kept
    digests = store.model_attrs("m")["digests"]
    assert digests == {
        "a": activation_digest(store.activations("m", "a").values),
        "b": activation_digest(b.astype(np.float32)),
    }
    assert digests["a"] == activation_digest(a)  # float64 given, float32 stored and hashed
    assert store.layer_digest("m", "a") != activation_digest(a[::-1])  # order matters
    assert activation_digest(a[:, :299]) != activation_digest(a)
    assert store.model_attrs("m")["probe_digest"] == store.probe_digest()
    store.write_activations("m", "a", a + 1e-3, overwrite=True)
    assert store.layer_digest("m", "a") == activation_digest(a + 1e-3) != digests["a"]
    assert store.layer_digest("m", "b") == digests["b"]


def test_the_probe_digest_is_its_content(tmp_path):
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    one = open_store(tmp_path / "one.zarr", mode="w")
    one.write_probe(x, ["p", "q"], truth={"t": x[:, 0] * 2.0})
    two = open_store(tmp_path / "two.zarr", mode="w")
    two.write_probe(x, ["p", "q"], truth={"t": x[:, 0] * 2.0})
    assert one.probe_digest() == two.probe_digest() == stored_digest(one.path / "probe")
    three = open_store(tmp_path / "three.zarr", mode="w")
    three.write_probe(x + 1, ["p", "q"], truth={"t": x[:, 0] * 2.0})
    assert three.probe_digest() != one.probe_digest()
