"""Forward hooks that capture layer outputs, always removed afterwards."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import ShapeError


def resolve_layers(model: Any, layers: Sequence[str], model_id: str) -> dict[str, Any]:
    """Map layer names (``named_modules()`` names) to modules; unknown names are an error
    that lists the closest valid names."""
    modules = dict(model.named_modules())
    out = {}
    for name in layers:
        if name not in modules:
            valid = [n for n in modules if n]
            close = difflib.get_close_matches(name, valid, n=5, cutoff=0.3) or valid[:10]
            raise ShapeError(
                f"model {model_id!r}: no layer named {name!r}; closest valid names: "
                + ", ".join(repr(c) for c in close)
            )
        if name and _is_scripted(model):
            raise ShapeError(
                f"model {model_id!r}: TorchScript modules do not support forward hooks, so layer "
                f"{name!r} cannot be recorded; record the model's output (layer '') or script a "
                "module that returns the wanted layers as outputs"
            )
        out[name] = modules[name]
    return out


def _is_scripted(model: Any) -> bool:
    import torch

    return isinstance(model, torch.jit.ScriptModule)


def first_tensor(output: Any) -> Any:
    while isinstance(output, (tuple, list)):
        output = output[0]
    return output


@contextmanager
def capture(modules: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Register one forward hook per module; yields a dict filled with each module's latest
    output (first element of tuple outputs, detached float32 CPU clone). Hooks are removed on
    exit, whatever happens inside the block."""
    import torch

    captured: dict[str, Any] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            out = first_tensor(output)
            if not isinstance(out, torch.Tensor):
                raise ShapeError(f"layer {name!r} returned {type(out).__name__}, not a tensor")
            captured[name] = out.detach().to(device="cpu", dtype=torch.float32).clone()

        return hook

    try:
        for name, module in modules.items():
            if name == "":  # the root module's output is taken from the call itself
                continue
            handles.append(module.register_forward_hook(make_hook(name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()
