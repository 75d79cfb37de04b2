"""Small helpers shared by the distill modules: symbols, numeric evaluation, complexity.

Private module: callers validate their arrays before calling in here.
"""

from __future__ import annotations

import ast
import keyword
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import sympy

from .._arrays import as_matrix
from ..errors import ShapeError


def symbols_for(names: Sequence[str]) -> tuple[sympy.Symbol, ...]:
    """One plain ``sympy.Symbol(name)`` per input variable, in column order."""
    return tuple(sympy.Symbol(str(name)) for name in names)


_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


def read_syntax(
    text: str,
    *,
    name: Callable[[str], sympy.Expr],
    function: Callable[[str, int], Callable[..., sympy.Expr]],
    number: Callable[[int | float, str], sympy.Expr],
    error: Callable[[str], Exception],
) -> sympy.Expr:
    """A formula read off its Python syntax tree, evaluating nothing: numbers, names,
    ``+ - * / **`` (``^`` is a power too), unary signs and calls of named functions.

    Why by hand: ``sympy.parse_expr`` and ``sympify`` run their text through ``eval``, so a
    formula in a config or a store could run code. Each caller says what a name, a function
    (its name and number of arguments; raise to refuse it) and a number literal (its value
    and its text) are, and how an error reads (``error(message)`` is raised).
    """
    src = text.strip().replace("^", "**")
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as err:
        raise error(f"not a formula ({err.msg})") from err

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return number(node.value, ast.get_source_segment(src, node) or repr(node.value))
        if isinstance(node, ast.Name):
            return name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = sympy.sympify(walk(node.left)), sympy.sympify(walk(node.right))
            return _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = sympy.sympify(walk(node.operand))
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            apply = function(node.func.id, len(node.args))
            return apply(*(walk(a) for a in node.args))
        raise error(
            f"unsupported syntax {type(node).__name__} (numbers, names, + - * / ** and "
            "function calls only)"
        )

    return cast(sympy.Expr, sympy.sympify(walk(tree.body)))


#: the functions a written formula may call: what the engines' trees translate to
#: (:mod:`~ensemble_lens.distill.backends`) and what a user's law may use
_WRITTEN_FUNCTIONS = (
    "sqrt exp log sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh Abs sign "
    "Min Max floor ceiling cbrt"
).split()


def parse_written(text: str) -> sympy.Expr:
    """A formula as the project writes it, back to sympy, every bare name a Symbol: a
    variable called ``E``, ``I``, ``S``, ``N`` or ``beta`` stays a variable (``sympify``
    would read Euler's number, the imaginary unit, sympy's singletons or functions). Read
    off its syntax tree (:func:`read_syntax`): a formula in a store someone else wrote is
    never run; a float keeps every digit written."""

    def function(fname: str, n: int) -> Callable[..., sympy.Expr]:
        if fname in _WRITTEN_FUNCTIONS:
            return getattr(sympy, fname)
        return sympy.Function(fname)  # undefined, as sympify reads it: never called

    def number(value: int | float, literal: str) -> sympy.Expr:
        return sympy.Integer(value) if isinstance(value, int) else sympy.Float(literal)

    def error(message: str) -> Exception:
        return ValueError(f"formula {text!r}: {message}")

    return read_syntax(text, name=sympy.Symbol, function=function, number=number, error=error)


#: what a formula's variable may be called, as error messages say it
NAME_RULE = "letters, digits and _, not starting with a digit, not a Python keyword"


def is_formula_name(name: object) -> bool:
    """Whether ``name`` can be a formula's variable: a Python identifier that is not a keyword
    (formulas are written and read back as Python expressions, where ``lambda`` or ``T (K)``
    cannot stand for a variable)."""
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


def check_variable_names(names: Sequence[str], where: str) -> None:
    """Raise when a name cannot be a formula's variable (:func:`is_formula_name`)."""
    for name in names:
        if not is_formula_name(name):
            raise ShapeError(
                f"{where}: variable {name!r} cannot name a formula's variable ({NAME_RULE}); "
                "rename it"
            )


def check_names(expr: sympy.Expr, names: Sequence[str], where: str) -> None:
    """Raise when ``expr`` uses a symbol that is not one of the named input columns."""
    unknown = sorted(str(s) for s in expr.free_symbols if str(s) not in set(names))
    if unknown:
        raise ShapeError(
            f"{where}: expression uses symbols {unknown} that are not input variables "
            f"(expected a subset of {list(names)})"
        )


_NUMPY_FUNCS = {
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.sin: np.sin,
    sympy.cos: np.cos,
    sympy.tan: np.tan,
    sympy.sinh: np.sinh,
    sympy.cosh: np.cosh,
    sympy.tanh: np.tanh,
    sympy.asin: np.arcsin,
    sympy.acos: np.arccos,
    sympy.atan: np.arctan,
    sympy.Abs: np.abs,
    sympy.floor: np.floor,
    sympy.ceiling: np.ceil,
    sympy.sign: np.sign,
}


class _Unsupported(Exception):
    """An expression node the fast evaluator does not know; lambdify takes over."""


def _walk(expr: sympy.Expr, env: dict[str, np.ndarray]) -> np.ndarray | float:
    """Recursive numpy evaluation of the common node types (much cheaper than lambdify)."""
    if expr.is_Symbol:
        return env[expr.name]
    if expr.is_Number:
        return float(expr)
    if expr.is_Add:
        return sum(_walk(a, env) for a in expr.args)
    if expr.is_Mul:
        out: np.ndarray | float = 1.0
        for a in expr.args:
            out = out * _walk(a, env)
        return out
    if expr.is_Pow:
        return np.power(_walk(expr.base, env), _walk(expr.exp, env))
    fn = _NUMPY_FUNCS.get(expr.func)
    if fn is not None and len(expr.args) == 1:
        return fn(_walk(expr.args[0], env))
    raise _Unsupported(str(expr.func))


def evaluate(expr: sympy.Expr, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Evaluate ``expr`` on the rows of ``X`` (sample, variable) -> (sample,) float64.

    Common node types are evaluated directly with numpy; anything else goes through
    ``sympy.lambdify``. Non-finite values (a division by zero, the log of a negative number)
    are returned as they come; callers decide what a non-finite prediction means.
    """
    env = {str(name): X[:, j] for j, name in enumerate(names)}
    with np.errstate(all="ignore"):
        try:
            out = _walk(expr, env)
        except (_Unsupported, TypeError):  # e.g. sympy.I, zoo
            fn = sympy.lambdify(symbols_for(names), expr, modules="numpy", dummify=True)
            out = fn(*(X[:, j] for j in range(X.shape[1])))
    out = np.asarray(out)
    if np.iscomplexobj(out):
        out = np.where(np.abs(out.imag) > 0, np.nan, out.real)
    return np.ascontiguousarray(np.broadcast_to(out, (X.shape[0],)), dtype=np.float64)


def complexity(expr: sympy.Expr) -> int:
    """Number of nodes in the sympy expression tree (operators, symbols and numbers).

    The same measure is used for every backend so that fronts are comparable:
    ``2.5*m*dx/r**3`` is ``Mul(2.5, m, dx, Pow(r, -3))``, 7 nodes.
    """
    return sum(1 for _ in sympy.preorder_traversal(expr))


def affine_fit(f: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(a, b)`` with ``y ~ a * f + b``; ``a = 0`` when ``f`` is constant."""
    fc = f - f.mean()
    denom = float(fc @ fc)
    if denom <= 1e-300 or not np.isfinite(denom):
        return 0.0, float(y.mean())
    a = float(fc @ (y - y.mean())) / denom
    return a, float(y.mean() - a * f.mean())


def r2_score(pred: np.ndarray, y: np.ndarray) -> float:
    """Coefficient of determination; ``-inf`` when any prediction is non-finite."""
    if not np.all(np.isfinite(pred)):
        return float("-inf")
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum((y - pred) ** 2))
    return 1.0 - ss_res / ss_tot


def affine_r2(f: np.ndarray, y: np.ndarray) -> float:
    """R^2 of the best affine map of ``f`` onto ``y`` (``-inf`` when ``f`` is non-finite)."""
    if not np.all(np.isfinite(f)):
        return float("-inf")
    a, b = affine_fit(f, y)
    return r2_score(a * f + b, y)


def validate_xy(
    X: object, y: object, names: Sequence[str], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Public-edge check of one design matrix and target: float64 arrays, matching sizes.

    Raises
    ------
    ShapeError
        On non-finite values, mismatched sample counts, a wrong number of names, or a
        constant target.
    """
    Xa = as_matrix(X, f"{where}: X")
    ya = as_matrix(y, f"{where}: y")
    if ya.shape[1] != 1:
        raise ShapeError(f"{where}: expected a 1-D target, got shape {ya.shape}")
    ya = ya[:, 0]
    if Xa.shape[0] != ya.shape[0]:
        raise ShapeError(
            f"{where}: X has {Xa.shape[0]} samples but y has {ya.shape[0]}; "
            "they must be the same probe samples"
        )
    check_width(Xa, names, where)
    if float(np.std(ya)) == 0.0:
        raise ShapeError(f"{where}: the target is constant; there is nothing to explain")
    return Xa, ya


def check_width(X: np.ndarray, names: Sequence[str], where: str) -> None:
    """Raise when the number of names differs from the number of input columns, or a name
    cannot be a formula's variable."""
    if len(names) != X.shape[1]:
        raise ShapeError(
            f"{where}: expected one name per input column ({X.shape[1]}), "
            f"got {len(names)} names {list(names)}"
        )
    check_variable_names(names, where)
