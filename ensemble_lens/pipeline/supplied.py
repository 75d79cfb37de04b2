"""Members handed to :func:`~ensemble_lens.pipeline.runner.run_study` as Python objects.

A notebook user has the networks (``nn.Module``) or their activations (arrays) in memory;
they are recorded into the study store in this process (modules cannot always be shipped to
workers) and then analysed like every other member. Each is tagged with the hash of its
weights or values, so an unchanged member is not recorded again and the later stages stay
up to date.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import IngestError
from ..record.store import COMPLETE

log = logging.getLogger(__name__)


def record_in_memory(ctx: Any, members: Mapping[str, Any]) -> dict[str, str]:
    """Record every member of ``members`` (id -> ``nn.Module`` | array | {layer: array});
    all are checked (one probe batch through each network, array shapes) before any is
    written. Returns what was done per id."""
    from ..record.hooks import resolve_layers
    from ..record.recorder import check_forward

    layers = list(ctx.cfg.record.layers or [])
    plan = {}
    for mid, obj in members.items():
        if _is_module(obj):
            if not layers:
                raise IngestError(
                    f"member {mid!r}: an nn.Module needs the layers to record; expected "
                    "'record.layers' in the config (e.g. ['latent'], or [''] for the output)"
                )
            check_forward(ctx.store, obj, resolve_layers(obj, layers, mid), mid)
            plan[mid] = ("module", obj, _module_hash(obj))
        else:
            arrays = _as_layers(mid, obj, layers)
            for layer, values in arrays.items():
                if np.shape(values)[0] != ctx.store.n_samples:
                    raise IngestError(
                        f"member {mid!r} layer {layer!r}: expected {ctx.store.n_samples} samples "
                        f"like the probe set, got {np.shape(values)[0]}"
                    )
            plan[mid] = ("arrays", arrays, _arrays_hash(arrays))
    out = {mid: _record_one(ctx, mid, *spec, layers) for mid, spec in plan.items()}
    from .extrapolation import record_in_memory as on_extrapolation_rows

    for mid, (_kind, obj, _tag) in plan.items():
        on_extrapolation_rows(ctx.store, mid, obj, layers, ctx.cfg.record.batch_size)
    return out


def _record_one(ctx: Any, mid: str, kind: str, obj: Any, tag: str, layers: list[str]) -> str:
    from ..record.ingest import ingest_activations
    from ..record.recorder import record_activations

    store = ctx.store
    if store.status(mid) == COMPLETE:
        attrs = store.model_attrs(mid)
        on = attrs.get("probe_digest")  # recorded on the probe the store holds now
        if attrs.get("tag") == tag and on in (None, store.probe_digest()):
            return "skipped"
    attrs = {"tag": tag, "source": "in_memory", "ingest_kind": kind}
    if kind == "module":
        record_activations(
            obj,
            store,
            mid,
            layers,
            batch_size=ctx.cfg.record.batch_size,
            attrs=attrs,
            overwrite=True,
        )
    else:
        ingest_activations(store, mid, obj, sample_ids="probe_order", attrs=attrs, overwrite=True)
    log.info("member %s: recorded from memory (%s)", mid, kind)
    return "recorded"


def _is_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(obj, torch.nn.Module)


def _as_layers(mid: str, obj: Any, layers: list[str]) -> dict[str, np.ndarray]:
    if isinstance(obj, Mapping):
        return {str(k): np.asarray(v) for k, v in obj.items()}
    arr = np.asarray(obj)
    if arr.ndim != 2:
        raise IngestError(
            f"member {mid!r}: expected an nn.Module, a (sample, unit) array or a dict layer -> "
            f"array, got {type(obj).__name__} of shape {arr.shape}"
        )
    return {layers[0] if len(layers) == 1 else "latent": arr}


def _module_hash(module: Any) -> str:
    h = hashlib.sha256(type(module).__name__.encode())
    for key, value in module.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _arrays_hash(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()
