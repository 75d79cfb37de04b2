"""Small, fast studies for the fault tests (resolved from configs as "fault_tasks:...")."""

from __future__ import annotations

import os
import time

from user_tasks import ProductTask


class SlowRecordTask(ProductTask):
    """The product task, but recording sleeps per batch, so a store write can be caught live."""

    name = "slow_record"
    latent_layer = "inner.latent"

    def probe_module(self, model):
        import torch

        class Slow(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                time.sleep(0.05)
                return self.inner(x)

        return Slow(model)


class ClockTask(ProductTask):
    """The product task whose training steps each sleep ``CLOCK_TASK_SLEEP`` seconds (an
    environment variable, default 0): a machine as busy as a test needs, so that
    ``train.max_seconds`` stops training after the first epoch, or never."""

    name = "clock"

    def loss(self, model, batch):
        if model.training:
            time.sleep(float(os.environ.get("CLOCK_TASK_SLEEP", "0")))
        return super().loss(model, batch)


def fault_config(store, task="user_tasks:ProductTask", **over):
    """Two members, two epochs, 200 probes, sparse SR: a whole run in a few seconds."""
    cfg = {
        "name": "faults",
        "task": {"name": task},
        "probe": {"n": 200, "n_extrapolation": 50},
        "ensemble": {
            "seeds": [0, 1],
            "untrained_null": False,
            "train": {"epochs": 2, "n_train": 300, "n_val": 100},
        },
        "record": {"batch_size": 50},
        "similarity": {"metrics": ["linear_cka", "procrustes_similarity"]},
        "consensus": {"n_null": 2},
        "distill": {"backend": "sparse"},
        "execution": {"scheduler": "serial"},
        "store": str(store),
    }
    for key, value in over.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg
