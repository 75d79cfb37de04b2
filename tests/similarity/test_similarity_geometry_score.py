"""Geometry Score (Khrulkov & Oseledets 2018): relative living times against the paper's
definition on a grid, the number of holes of a circle / two circles / a blob, invariances,
determinism under a seed, the registry name and the all-pairs path."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from ensemble_lens.errors import BackendUnavailableError, ShapeError
from ensemble_lens.similarity import measure, pairwise
from ensemble_lens.similarity.geometry_score import (
    geometry_score,
    mean_rlt,
    relative_living_times,
)

pytest.importorskip("gudhi")
KW = {"n": 12, "gamma": 0.1, "n_landmarks": 32}


def _clouds(n=160, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    ring = np.c_[np.cos(t), np.sin(t)]
    two = np.r_[ring[: n // 2], ring[n // 2 :] + np.array([3.0, 0.0])]
    noise = 0.02 * rng.normal(size=(n, 2))
    return {"ring": ring + noise, "two": two + noise, "blob": rng.normal(size=(n, 2))}


def test_rlt_equals_the_definition_on_a_grid():
    rng = np.random.default_rng(1)
    b = rng.uniform(0, 1.0, 7)
    iv = np.c_[b, b + rng.uniform(0, 0.8, 7)]
    iv[2, 1] = np.inf  # alive at the end: closed at alpha_max
    alpha_max = 1.2
    grid = (np.arange(200_000) + 0.5) * alpha_max / 200_000
    beta = ((iv[:, :1] <= grid) & (grid < iv[:, 1:])).sum(axis=0)  # holes alive at alpha
    ref = np.bincount(beta, minlength=5)[:5] / grid.size
    got = relative_living_times(iv, alpha_max, i_max=5)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert relative_living_times(np.zeros((0, 2)), 1.0, 3).tolist() == [1.0, 0.0, 0.0]


def test_holes_of_a_circle_two_circles_and_a_blob():
    c = _clouds()
    peaks = {k: int(np.argmax(mean_rlt(x, **KW))) for k, x in c.items()}
    assert peaks == {"ring": 1, "two": 2, "blob": 0}
    gs = measure("gs-n=12-gamma=0.1-landmarks=32")
    assert gs(c["ring"], c["two"]) > 0.2 and gs(c["ring"], c["blob"]) > 0.2


def test_invariances_and_seed():
    c = _clouds()
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = 7.0 * np.c_[c["ring"], np.zeros(len(c["ring"]))] @ q + 4.0  # wider, rotated
    assert geometry_score(c["ring"], moved, **KW) == pytest.approx(0.0, abs=1e-12)
    a = mean_rlt(c["blob"], **KW)
    np.testing.assert_array_equal(a, mean_rlt(c["blob"], **KW))
    assert not np.array_equal(a, mean_rlt(c["blob"], **{**KW, "seed": 1}))


def test_registry_name_and_all_pairs():
    c = _clouds(n=120)
    m = measure("gs-n=6-gamma=0.1-landmarks=24")
    assert m.kind == "distance" and m.symmetric and m.prepare is not None
    out = pairwise(c, m)
    assert out.attrs["method"] == "prepared"
    ref = [[m(x, y) for y in c.values()] for x in c.values()]
    np.testing.assert_allclose(out.values, ref, rtol=0, atol=1e-15)


def test_errors(monkeypatch):
    with pytest.raises(ShapeError, match="at least 3 samples, got shape"):
        mean_rlt(np.zeros((2, 2)))
    with pytest.raises(ShapeError, match="n_landmarks >= 3, n >= 1 and i_max >= 1, got 2, 1, 1"):
        mean_rlt(np.zeros((20, 2)), n_landmarks=2, n=1, i_max=1)
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "gudhi":
            raise ImportError("no gudhi")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(BackendUnavailableError, match=r"pip install ensemble-lens\[topology\]"):
        mean_rlt(np.zeros((100, 2)))
