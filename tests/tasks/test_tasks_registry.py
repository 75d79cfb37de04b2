"""Task registry, base-class helpers and a user-defined task resolved by 'module:callable'."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy

from ensemble_lens.errors import ShapeError, TaskError
from ensemble_lens.tasks import Task, get_task, list_tasks, r2_score
from ensemble_lens.tasks.base import latent_penalty

BUILTIN = [
    "bottleneck",
    "charge",
    "gravity",
    "harmonic",
    "kepler",
    "matrix_invariants",
    "modular",
    "pair_energy",
    "pendulum",
    "screened",
    "spring",
]


class LineTask(Task):
    """A user task: y = slope * x through a one-unit latent."""

    name = "line"
    input_names = ("x",)
    latent_kind = "scalar"

    def __init__(self, slope: float = 1.0) -> None:
        self.slope = slope
        self.latents = {"y": slope * sympy.Symbol("x")}

    def sample_probe(self, n, seed, *, extrapolate=False):
        low = 1.0 if extrapolate else -1.0
        return np.random.default_rng(seed).uniform(low, low + 2, size=(n, 1)).astype(np.float32)

    def make_data(self, n, seed):
        import torch

        x = torch.from_numpy(self.sample_probe(n, seed))
        return {"x": x, "target": self.slope * x}

    def build_model(self, arch, seed):
        import torch

        torch.manual_seed(seed)
        return torch.nn.Sequential()

    def probe_module(self, model):
        return model


def make_line_task(slope: float = 1.0) -> LineTask:
    return LineTask(slope=slope)


def not_a_task() -> int:
    return 3


def test_list_tasks_names_every_builtin():
    assert list_tasks() == BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_task_resolves_with_consistent_attributes(name):
    task = get_task(name)
    assert isinstance(task, Task)
    assert task.name == name
    names = {str(s) for expr in task.latents.values() for s in expr.free_symbols}
    assert names <= set(task.input_names)
    assert task.latent_kind in ("vector", "scalar", "monotone")
    if task.equivariant_vector is not None:
        assert set(task.equivariant_vector) <= set(task.input_names)
    assert task.describe()["latents"].keys() == task.latents.keys()


def test_module_callable_spec_resolves_user_task_with_params():
    task = get_task(f"{__name__}:make_line_task", slope=2.5)
    assert isinstance(task, LineTask) and task.slope == 2.5
    probe = task.sample_probe(7, seed=1)
    np.testing.assert_allclose(task.truth(probe)["y"], 2.5 * probe[:, 0], rtol=1e-6)
    assert get_task(f"{__name__}:LineTask").slope == 1.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_task", "unknown task 'no_such_task'"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        (f"{__name__}:missing", "has no attribute 'missing'"),
        (f"{__name__}:not_a_task", "expected the callable to return a .*Task, got int"),
        (f"{__name__}:BUILTIN", "is not callable"),
        (":f", "expected a built-in name"),
    ],
)
def test_bad_specs_raise_task_error_naming_the_spec(spec, message):
    with pytest.raises(TaskError, match=message):
        get_task(spec)


def test_bad_params_and_non_string_spec_raise_task_error():
    with pytest.raises(TaskError, match="bad parameters"):
        get_task(f"{__name__}:make_line_task", wrong=1)
    with pytest.raises(TaskError, match="expected a str, got int"):
        get_task(3)  # type: ignore[arg-type]
    with pytest.raises(TaskError, match="expected n_bodies >= 2"):
        get_task("gravity", n_bodies=1)


def test_truth_rejects_wrong_probe_shape():
    task = LineTask()
    with pytest.raises(ShapeError, match=r"task 'line': expected probe of shape \(n, 1\)"):
        task.truth(np.zeros((4, 2)))


def test_truth_of_constant_latent_broadcasts():
    task = LineTask()
    task.latents = {"one": sympy.Integer(1)}
    np.testing.assert_array_equal(task.truth(np.zeros((3, 1)))["one"], np.ones(3))


def test_r2_score_known_values():
    y = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    assert r2_score(y, y) == 1.0
    assert r2_score(y, np.tile(y.mean(0), (3, 1))) == pytest.approx(0.0)
    # residual 1 everywhere: SSE 6, SST 16
    assert r2_score(y, y + 1.0) == pytest.approx(1 - 6 / 16)
    assert r2_score(np.ones((3, 1)), np.zeros((3, 1))) == 0.0
    with pytest.raises(ShapeError, match=r"expected predictions of shape \(3, 2\)"):
        r2_score(y, y[:, :1])


def test_latent_penalty_needs_weight_and_activations():
    import torch

    class M:
        l1 = 0.5
        latent_activations = torch.tensor([[-2.0, 2.0]])

    assert float(latent_penalty(M())) == 1.0
    assert latent_penalty(object()) == 0.0


def test_importing_tasks_and_specs_loads_no_torch():
    code = (
        "import sys, ensemble_lens.tasks, ensemble_lens.tasks.base, ensemble_lens.models.spec;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
