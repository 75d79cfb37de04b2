"""FormulaTask: a law written as a formula, its data, ranges, noise, errors and config form."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy

from ensemble_lens.config import FORMULA_TASK, load_config
from ensemble_lens.errors import ConfigError, TaskError
from ensemble_lens.tasks import FormulaTask, get_task
from ensemble_lens.tasks.formula import extrapolation_ranges, parse_formula

COULOMB = "q1*q2/(4*pi*epsilon*r**2)"
RANGES = {"q1": [1, 5], "q2": [1, 5], "epsilon": [1, 5], "r": [1, 5]}


def test_parse_formula_builds_the_sympy_law():
    q1, q2, eps, r = sympy.symbols("q1 q2 epsilon r")
    assert (
        sympy.simplify(parse_formula(COULOMB, RANGES) - q1 * q2 / (4 * sympy.pi * eps * r**2)) == 0
    )
    n, t = sympy.symbols("n t")
    assert parse_formula("arcsin(n*sin(t)) + ln(n) - 0.5", ["n", "t"]) == (
        sympy.asin(n * sympy.sin(t)) + sympy.log(n) - sympy.Rational(1, 2)
    )
    assert parse_formula("-x**2", ["x"]) == -(sympy.Symbol("x") ** 2)
    # ^ is a power, with the power's precedence (Python's xor binds looser than +)
    assert parse_formula("x^2 + n*t^-1", ["x", "n", "t"]) == parse_formula(
        "x**2 + n/t", ["x", "n", "t"]
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x +", r"formula 'x \+': not a formula"),
        ("x*z", r"unknown variable 'z' \(declared: x\)"),
        ("foo(x)", r"unknown function 'foo'"),
        ("__import__('os').system('true')", r"unsupported syntax Call|unknown function"),
        ("x.real", r"unsupported syntax Attribute"),
        ("sin(x, x)", r"sin\(\) takes exactly one argument"),
        ("", r"formula: expected a non-empty string"),
        ("x < 1", r"unsupported syntax Compare"),
    ],
)
def test_parse_formula_rejects_what_is_not_a_law(text, message):
    with pytest.raises(TaskError, match=message):
        parse_formula(text, ["x"])


def test_parse_formula_evaluates_no_code(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(TaskError):
        parse_formula(f"open({str(marker)!r}, 'w')", ["x"])
    assert not marker.exists()


def test_samples_lie_in_the_ranges_and_are_seeded():
    task = FormulaTask(COULOMB, RANGES, noise=0.0, n=500)
    x = task.sample_probe(2000, seed=3)
    assert x.shape == (2000, 4) and x.dtype == np.float32
    assert x.min() >= 1 and x.max() <= 5
    np.testing.assert_array_equal(x, task.sample_probe(2000, seed=3))
    assert not np.array_equal(x, task.sample_probe(2000, seed=4))
    truth = task.truth(x)["y"]
    expected = x[:, 0] * x[:, 1] / (4 * np.pi * x[:, 2] * x[:, 3] ** 2)
    np.testing.assert_allclose(truth, expected, rtol=1e-6)


def test_noise_is_a_fraction_of_the_targets_std_and_the_truth_stays_clean():
    task = FormulaTask("a*b", {"a": [1, 5], "b": [1, 5]}, noise=0.1, n=500)
    clean = FormulaTask("a*b", {"a": [1, 5], "b": [1, 5]}, noise=0.0, n=500)
    x, noisy = task.training_data(20000, seed=0)
    law = task.law(x)
    ratio = np.std(noisy - law) / np.std(law)
    assert 0.095 < ratio < 0.105
    # the networks see the same rows, standardised by the task's one reference scale (the
    # noisy targets of its own n rows, seed 0); the clean task's rows are the law exactly
    data = task.make_data(20000, seed=0)
    np.testing.assert_allclose(data["x"].numpy(), x.astype(np.float32))
    _, ref = task.training_data(500, seed=0)
    assert task.target_scale == (pytest.approx(ref.mean()), pytest.approx(ref.std()))
    z = (noisy - ref.mean()) / ref.std()
    np.testing.assert_allclose(data["target"].numpy()[:, 0], z, rtol=1e-4, atol=1e-5)
    _, y0 = clean.training_data(100, seed=0)
    np.testing.assert_allclose(y0, clean.law(clean.training_data(100, seed=0)[0]))
    # the probe truth has no noise
    probe = task.sample_probe(50, seed=1).astype(np.float64)
    np.testing.assert_allclose(task.truth(probe)["y"], probe[:, 0] * probe[:, 1])


def test_extrapolation_rule_widens_around_the_centre_and_keeps_the_sign():
    got = extrapolation_ranges({"r": (1.0, 5.0), "x": (-1.0, 1.0), "n": (-4.0, -2.0)}, 2.0)
    assert got == {"r": (0.5, 7.0), "x": (-2.0, 2.0), "n": (-5.0, -1.0)}
    assert extrapolation_ranges({"a": (0.0, 1.0)}, 3.0) == {"a": (0.0, 2.0)}
    assert extrapolation_ranges({"a": (1.0, 2.0), "b": (1.0, 2.0)}, {"a": [0.5, 4]}) == {
        "a": (0.5, 4.0),
        "b": (0.75, 2.25),
    }
    task = FormulaTask("a*b", {"a": [1, 5], "b": [-1, 1]}, extrapolation=2.0)
    x = task.sample_probe(4000, seed=0, extrapolate=True)
    assert x[:, 0].min() >= 0.5 and x[:, 0].max() > 6.5 and x[:, 1].min() < -1.5


def test_rows_where_the_law_is_undefined_are_drawn_again():
    # arcsin is defined for n*x <= 1 only: half of this square
    task = FormulaTask("arcsin(n*x)", {"n": [0, 2], "x": [0, 1]})
    x = task.sample_probe(3000, seed=0).astype(np.float64)
    assert len(x) == 3000 and np.all(x[:, 0] * x[:, 1] <= 1)
    assert np.all(np.isfinite(task.truth(x)["y"]))


def test_default_network_has_a_one_unit_bottleneck_and_trains():
    import torch

    from ensemble_lens.models import train_member

    task = FormulaTask("a*b + c", {"a": [1, 2], "b": [1, 2], "c": [0, 1]}, noise=0.01, n=2000)
    assert task.default_arch.latent_dim == 1 and task.latent_kind == "scalar"
    model = task.build_model(task.default_arch, seed=0)
    probe = torch.from_numpy(task.sample_probe(10, seed=0))
    modules = dict(task.probe_module(model).named_modules())
    assert task.latent_layer == "output" and modules["encoder"](probe).shape == (10, 1)
    assert modules["encoder.latent"](torch.zeros(1, 64)).shape == (1, 1)
    assert task.probe_module(model)(probe).shape == (10, 1)
    train = task.default_train.model_copy(update={"epochs": 15})
    result = train_member(task, task.default_arch, train, seed=0)
    assert result.metrics["val_r2"] > 0.97
    # the recorded layer is the prediction in the law's own units, not standardised ones
    x = task.sample_probe(500, seed=1)
    with torch.no_grad():
        out = task.probe_module(result.model)(torch.from_numpy(x)).numpy()[:, 0]
    law = task.law(x.astype(np.float64))
    assert np.sqrt(np.mean((out - law) ** 2)) < 0.05 * law.std()
    assert abs(out.mean() - law.mean()) < 0.02 * law.std()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variables": {"x": [2, 1]}}, r"variables\.x: range \[2, 1\] is inverted"),
        ({"variables": {"x": [1, 1]}}, r"variables\.x: range \[1, 1\] is empty"),
        ({"variables": {"x": [1]}}, r"variables\.x: expected a range \[low, high\]"),
        ({"variables": {"x": ["a", 2]}}, r"variables\.x: expected numbers"),
        ({"variables": {"x": [0, float("inf")]}}, r"variables\.x: expected finite bounds"),
        ({"variables": {}}, r"variables: expected a mapping"),
        ({"variables": {"pi": [1, 2]}, "formula": "pi"}, r"variables\.pi: 'pi' is a function"),
        ({"variables": {"2x": [1, 2]}}, r"variables: '2x' is not a valid variable name"),
        ({"variables": {"lambda": [1, 2]}}, r"variables: 'lambda' is not a valid variable name"),
        ({"noise": -0.1}, r"noise: expected a finite fraction >= 0"),
        ({"n": 5}, r"n: expected an integer number of examples >= 10"),
        ({"output": "F 1"}, r"output: expected a name"),
        ({"extrapolation": 0.5}, r"extrapolation: expected a factor >= 1"),
        ({"extrapolation": "wide"}, r"extrapolation: expected a factor >= 1 or a mapping"),
        ({"extrapolation": {"z": [0, 1]}}, r"extrapolation: unknown variable 'z'"),
        ({"extrapolation": {"x": [3, 0]}}, r"extrapolation\.x: range \[3, 0\] is inverted"),
        ({"formula": "sqrt(-x)"}, r"not finite on 100% of the variable ranges"),
        ({"formula": "x - x"}, r"formula 'x - x': constant on the variable ranges"),
    ],
)
def test_bad_formula_tasks_are_one_line_naming_the_key(kwargs, message):
    args = {"formula": "x", "variables": {"x": [1, 2]}, **kwargs}
    with pytest.raises(TaskError, match=message):
        FormulaTask(args.pop("formula"), args.pop("variables"), **args)


def test_too_few_finite_rows_on_the_extrapolation_range_is_an_error():
    task = FormulaTask("sqrt(1 - x)", {"x": [0, 1]}, extrapolation={"x": [5, 6]})
    with pytest.raises(TaskError, match=r"too few rows where it is finite"):
        task.sample_probe(10, seed=0, extrapolate=True)


def test_config_formula_form_resolves_to_the_task():
    cfg = load_config(
        {"task": {"formula": COULOMB, "variables": RANGES, "noise": 0.01, "n": 1000, "output": "F"}}
    )
    task = get_task(cfg.task.name, **cfg.task.params)
    assert (
        isinstance(task, FormulaTask) and task.noise == 0.01 and task.default_train.n_train == 1000
    )
    assert list(task.latents) == ["F"] and task.input_names == ("q1", "q2", "epsilon", "r")
    # the stored (dumped) form reads back to the same config and hash
    again = load_config({"task": cfg.task.model_dump(mode="json")})
    assert again.sha256("task") == cfg.sha256("task")


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"formula": "x*", "variables": {"x": [1, 2]}}, r"demo\.yaml: task: .*formula 'x\*'"),
        ({"formula": "x*y", "variables": {"x": [1, 2]}}, r"task: .*unknown variable 'y'"),
        ({"formula": "x", "variables": {"x": [3, 2]}}, r"task: .*variables\.x: range"),
        ({"formula": "x"}, r"task: .*a formula task needs 'variables'"),
        ({"formula": "x", "variables": {"x": [1, 2]}, "nois": 1}, r"unexpected key 'nois'"),
        ({"formula": "x", "variables": {"x": [1, 2]}, "n": "many"}, r"task: .*n: expected an"),
        (
            {"name": FORMULA_TASK, "params": {"formula": "x", "variables": {"x": [1, 2]}, "k": 1}},
            r"task: .*formula task: .*unexpected keyword argument 'k'",
        ),
    ],
)
def test_config_errors_come_before_anything_is_written(tmp_path, task, message):
    import yaml

    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump({"task": task, "store": str(tmp_path / "s.zarr")}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    assert not (tmp_path / "s.zarr").exists()


def test_formula_task_import_stays_light():
    code = (
        "import sys; from ensemble_lens.tasks import FormulaTask; "
        "FormulaTask('a*b', {'a': [1, 2], 'b': [1, 2]}).sample_probe(5, 0); "
        "print(sorted(m for m in ('torch', 'dask', 'pyoperon') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_reachable_from_the_package_root():
    import ensemble_lens as el

    assert el.tasks.FormulaTask is FormulaTask and el.FormulaTask is FormulaTask
