"""Dimensional analysis: units parsed, dimensionless groups and the target's scale, the
search run on the groups with its formulas written back in the inputs, and the config form."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy
import yaml

from ensemble_lens import run_study
from ensemble_lens.config import load_config
from ensemble_lens.distill import Dimensions, distill_component
from ensemble_lens.distill._expr import evaluate
from ensemble_lens.distill.dimensions import unit_exponents
from ensemble_lens.errors import ConfigError, NonFiniteError

UNITS = ["m", "kg", "s", "A", "K", "N", "J", "C", "V", "T", "Hz", "Pa", "F", "W", "1"]


def test_units_are_read_as_exponents_of_base_dimensions() -> None:
    assert unit_exponents("kg*m/s**2", "x") == unit_exponents("N", "x")
    assert unit_exponents("kg*m/s^2", "x") == unit_exponents("N", "x")  # ^ is a power
    assert unit_exponents("F/m", "x") == {"mass": -1, "length": -3, "current": 2, "time": 4}
    assert unit_exponents("1", "x") == {} == unit_exponents("rad", "x")
    assert unit_exponents("m**(1/2)", "x") == {"length": sympy.Rational(1, 2)}
    assert unit_exponents("km", "x") == unit_exponents("2*m", "x")  # scale does not count
    assert unit_exponents("1/s^2", "x") == unit_exponents("s**-2", "x") == {"time": -2}
    assert unit_exponents("Hz**0.5*s**(1/2)", "x") == {}


def test_a_unit_is_read_not_run(tmp_path) -> None:
    """A unit is parsed from its syntax tree, like a formula: code in a config never runs."""
    marker = tmp_path / "ran"
    with pytest.raises(ConfigError, match="is not a product of powers"):
        unit_exponents(f"__import__('pathlib').Path({str(marker)!r}).touch()", "x")
    with pytest.raises(ConfigError, match="is not a product of powers"):
        unit_exponents("m.__class__", "x")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        ("Kg", r"variable 'v': unit 'Kg' names 'Kg', which sympy\.physics\.units does not know"),
        ("m+s", r"variable 'v': unit 'm\+s' is not a product of powers"),
        ("m**x", r"variable 'v': unit 'm\*\*x' is not a product of powers"),
        ("m/", r"variable 'v': unit 'm/' does not parse"),
    ],
)
def test_a_bad_unit_is_one_line_naming_the_variable(unit: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Dimensions({"v": unit}, target="1")


def _exponents(expr: sympy.Expr, units: dict[str, str]) -> dict[str, sympy.Expr]:
    out: dict[str, sympy.Expr] = {}
    for name, power in expr.as_powers_dict().items():
        for dim, e in unit_exponents(units[str(name)], "x").items():
            out[dim] = out.get(dim, 0) + e * power
    return {k: v for k, v in out.items() if v != 0}


@pytest.mark.parametrize("seed", range(12))
def test_groups_have_no_units_and_the_scale_has_the_targets(seed: int) -> None:
    """Any inputs' units: the groups are dimensionless, independent, d - rank of them, and
    the scale carries exactly the target's unit (here a product of the inputs' units, so it
    always exists)."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 6))
    names = [f"x{i}" for i in range(d)]
    units = {n: str(rng.choice(UNITS)) for n in names}
    powers = rng.integers(-2, 3, size=d)
    target = "*".join(f"({units[n]})**({p})" for n, p in zip(names, powers, strict=True))
    view = Dimensions(units, target).view(names)
    for g in view.groups:
        assert _exponents(g, units) == {}, (units, g)
    assert _exponents(view.scale, units) == unit_exponents(target, "x")
    cols = [sympy.Matrix([[unit_exponents(units[n], "x").get(b, 0) for n in names]])
            for b in ("mass", "length", "time", "current", "temperature")]  # fmt: skip
    rank = sympy.Matrix.vstack(*cols).rank()
    assert len(view.groups) == d - rank
    # independent: their exponent vectors have full rank
    if view.groups:
        E = sympy.Matrix(
            [[g.as_powers_dict().get(sympy.Symbol(n), 0) for n in names] for g in view.groups]
        )
        assert E.rank() == len(view.groups)


def test_the_groups_of_a_known_law() -> None:
    view = Dimensions({"m0": "kg", "v": "m/s", "c": "m/s"}, "kg").view(["m0", "v", "c"])
    v, c, m0 = sympy.symbols("v c m0")
    assert view.groups == [v / c] and view.scale == m0
    d1, n, d2 = sympy.symbols("d1 n d2")
    view = Dimensions({"d1": "m", "n": "1", "d2": "m"}, "m").view(["d1", "n", "d2"])
    assert view.groups == [n, d2 / d1] and view.scale == d1
    # a ratio of two like inputs, one of them in the scale: the other in its unit
    c, u = sympy.symbols("c u")
    view = Dimensions({"c": "m/s", "v": "m/s", "u": "m/s"}, "m/s").view(["c", "v", "u"])
    assert view.groups == [v / c, u / c] and view.scale == c
    # not inside a composite group: the law's argument is h*omega/(kb*T), scale h*omega
    units = {"h": "J*s", "omega": "1/s", "kb": "J/K", "T": "K"}
    view = Dimensions(units, "J").view(list(units))
    assert [str(g) for g in view.groups] == ["h*omega/(T*kb)"] and str(view.scale) == "h*omega"
    # the simplest groups, whatever the order: the reduced-echelon basis in this order has
    # T**3*kb**3*n_0/(g**3*m**3) in place of the Boltzmann factor's exponent
    units = {"n_0": "1/m**3", "m": "kg", "x": "m", "T": "K", "g": "m/s**2", "kb": "J/K"}
    view = Dimensions(units, "1/m**3").view(list(units))
    s = {k: sympy.Symbol(k) for k in units}
    assert view.groups == [s["n_0"] * s["x"] ** 3, s["g"] * s["m"] * s["x"] / (s["T"] * s["kb"])]
    assert view.scale == s["n_0"]


def test_a_target_no_product_of_the_inputs_can_have_is_one_line() -> None:
    """Newton's gravity without G: the force's unit is not made of masses and a distance."""
    dims = Dimensions({"m1": "kg", "m2": "kg", "r": "m"}, target="N")
    with pytest.raises(ConfigError, match=r"the target's unit 'N' is not a product of powers"):
        dims.view(["m1", "m2", "r"])
    with pytest.raises(ConfigError, match=r"no unit for the input variable\(s\) \['r'\]"):
        Dimensions({"m1": "kg", "m2": "kg"}, target="kg").view(["m1", "m2", "r"])
    with pytest.raises(ConfigError, match="2 target units for a layer of 3 components"):
        Dimensions({"r": "m"}, target=["m", "m"]).for_component(0, 3)


def test_a_scale_that_is_zero_somewhere_is_one_line() -> None:
    view = Dimensions({"a": "m", "b": "m"}, target="m").view(["a", "b"])
    X = np.array([[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(NonFiniteError, match=r"the scale a is zero or not finite on 1 of 2"):
        view.target(X, np.ones(2))


def test_a_law_with_no_group_is_its_scale_times_a_constant() -> None:
    """A pendulum's period from its length and g: no group is left, and the search is one
    constant, 2 pi, written back as the law."""
    rng = np.random.default_rng(0)
    X = np.c_[rng.uniform(0.5, 2, 300), rng.uniform(5, 15, 300)]
    y = 2 * np.pi * np.sqrt(X[:, 0] / X[:, 1])
    res = distill_component(
        X[:200], y[:200], ["L", "g"], X_test=X[200:], y_test=y[200:],
        dimensions=Dimensions({"L": "m", "g": "m/s**2"}, "s"),
        truths={"T": 2 * sympy.pi * sympy.sqrt(sympy.Symbol("L") / sympy.Symbol("g"))},
    )  # fmt: skip
    assert res.exact_recovery and res.to_dict()["dimensionless_groups"] == []
    assert res.r2_test > 1 - 1e-6  # of the displayed, rounded constant


def test_the_search_runs_on_the_groups_and_writes_the_inputs() -> None:
    """A Doppler-like law in three inputs is a law of one group, v/c, times omega0: the
    search meets one variable, and the formula (and its front) come back in the inputs."""
    rng = np.random.default_rng(1)
    X = np.c_[rng.uniform(1, 5, 600), rng.uniform(1, 2, 600), rng.uniform(3, 10, 600)]
    names = ["omega0", "v", "c"]
    y = X[:, 0] / (1 - X[:, 1] / X[:, 2])
    dims = Dimensions({"omega0": "1/s", "v": "m/s", "c": "m/s"}, "Hz")
    res = distill_component(
        X[:400], y[:400], names, X_test=X[400:], y_test=y[400:], dimensions=dims,
        backend_options={"population_size": 300, "generations": 60},
        truths={"omega": sympy.sympify("omega0/(1 - v/c)")},
    )  # fmt: skip
    assert res.dimensionless_groups == ["v/c"]
    assert {str(s) for s in res.expr.free_symbols} <= set(names)
    assert all("pi0" not in f["expression"] for f in res.front)
    assert res.exact_recovery, res.expr
    assert np.allclose(evaluate(res.expr, X[400:], names), y[400:], rtol=1e-3)


def _study(tmp_path, **distill) -> dict:
    return {
        "name": "dims",
        "task": {
            "formula": "2*x*y + 3*x**2",
            "variables": {"x": [1, 2], "y": [1, 2]},
            "n": 2000,
        },
        "probe": {"n": 600, "n_extrapolation": 200},
        "ensemble": {"seeds": [0, 1, 2], "train": {"epochs": 40, "polish": 50}},
        "consensus": {"n_null": 5},
        "distill": {"backend": "sparse", "seeds": [0], **distill},
        "execution": {"scheduler": "serial"},
        "store": str(tmp_path / "d.zarr"),
    }


def test_a_study_searches_its_output_on_the_groups(tmp_path) -> None:
    """End to end: a formula task's output layer, in its target's units, is searched on the
    group of two lengths (``y`` in the unit of ``x``, the scale ``x**2``), and the record
    names it; the formula is the law in x and y."""
    dims = {"variables": {"x": "m", "y": "m"}, "target": "m**2"}
    result = run_study(_study(tmp_path, dimensions=dims))
    results = json.loads(result.report.with_name("results.json").read_text())
    (rec,) = [r for r in results["formulas"] if r.get("expression")]
    assert rec["basis"] == "units" and rec["dimensionless_groups"] == ["y/x"]
    xs = np.random.default_rng(3).uniform(1, 2, size=(200, 2))
    law = 2 * xs[:, 0] * xs[:, 1] + 3 * xs[:, 0] ** 2
    got = evaluate(sympy.sympify(rec["expression"]), xs, ["x", "y"])
    assert np.max(np.abs(got - law)) < 0.01 * law.std(), rec["expression"]


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        ({"variables": {"x": "m", "y": "metre_"}, "target": "m"}, r"unit 'metre_' names"),
        ({"variables": {"x": "m"}, "target": "m"}, r"no unit for the input variable\(s\) \['y'\]"),
        ({"variables": {"x": "m", "y": "m", "z": "s"}, "target": "m"}, r"\['z'\] are not formula"),
        ({"variables": {"x": "m", "y": "m"}, "target": "kg"}, r"target's unit 'kg' is not a"),
    ],
)
def test_bad_dimensions_are_one_line_before_anything_is_written(tmp_path, dims, message) -> None:
    with pytest.raises(ConfigError, match=message):
        run_study(_study(tmp_path, dimensions=dims))
    assert not (tmp_path / "d.zarr").exists()


def test_a_number_in_yaml_is_a_unit(tmp_path) -> None:
    """YAML reads ``n: 1`` as the number 1; the config takes it as the unit "1" (none)."""
    text = "{variables: {x: m, y: m, n: 1}, target: 1}"
    cfg = load_config({**_study(tmp_path), "distill": {"dimensions": yaml.safe_load(text)}})
    dims = cfg.distill.dimensions
    assert dims.variables == {"x": "m", "y": "m", "n": "1"} and dims.target == "1"
    assert dims.dimensions().view(["x", "y", "n"]).scale == 1


def test_only_a_layer_in_its_targets_units_is_searched_on_groups(caplog) -> None:
    """A consensus searched in the target's units (``units`` given: basis "units") goes
    through the groups; the same consensus without them (a hidden layer's frame) has no units,
    so it is searched on the variables, with a warning."""
    import xarray as xr

    from ensemble_lens.distill import DistillSettings, distill_consensus

    rng = np.random.default_rng(0)
    n = 400
    X = rng.uniform(1, 2, (n, 2))
    split = np.array(["fit"] * 300 + ["test"] * 100)
    y = X[:, 0] ** 2 + 2 * X[:, 0] * X[:, 1]
    M = np.stack([y + 1e-4 * rng.normal(size=n) for _ in range(3)])[:, :, None]
    ds = xr.Dataset(
        {
            "components": (("sample", "component"), (M.mean(0) - y.mean()) / y.std()),
            "member_scores": (("model", "sample", "component"), (M - y.mean()) / y.std()),
            "variance": (("component",), [1.0]),
            "is_consensus": (("component",), [True]),
        },
        coords={"model": ["a", "b", "c"], "component": [0]},
    )
    settings = DistillSettings(
        backend="sparse", dimensions=Dimensions({"x": "m", "y": "m"}, target="m**2")
    )
    (rec,) = distill_consensus(
        ds, X, ["x", "y"], split, layer="output", settings=settings, units=M.mean(0)
    ).records
    assert rec["basis"] == "units" and rec["dimensionless_groups"] == ["y/x"]
    (rec,) = distill_consensus(ds, X, ["x", "y"], split, layer="h", settings=settings).records
    assert rec["basis"] != "units" and rec["dimensionless_groups"] is None
    assert "distill.dimensions not applied" in caplog.text


def test_dimensionless_variables_search_as_without_units() -> None:
    """Every variable and the target without a unit (AI Feynman's I.6.2: two angles): the
    groups are the variables themselves and the scale is 1, so the search, its front and its
    formula are those of the search without units."""
    rng = np.random.default_rng(2)
    X = rng.uniform(1, 3, (400, 2))
    y = np.exp(-((X[:, 1] / X[:, 0]) ** 2) / 2) / (np.sqrt(2 * np.pi) * X[:, 0])
    names = ["sigma", "theta"]
    kw = {"X_test": X[300:], "y_test": y[300:], "seed": 3,
          "backend_options": {"population_size": 100, "generations": 10}}  # fmt: skip
    plain = distill_component(X[:300], y[:300], names, **kw)
    dims = Dimensions({"sigma": "1", "theta": "rad"}, target="1")
    searched = distill_component(X[:300], y[:300], names, dimensions=dims, **kw)
    assert searched.dimensionless_groups == ["sigma", "theta"]
    assert searched.front == plain.front and searched.expr == plain.expr
