"""A minimal stand-in for ``hfp8sim.training.tensors.Parameter`` (written in parallel by another engineer):
the attributes the optimizers, update rules and data-parallel code read and write, nothing more."""

from __future__ import annotations

import numpy as np


class Parameter:
    def __init__(self, name: str, value, kind: str = "weight"):
        self.name = name
        self.value = np.array(value, np.float32)
        self.grad: np.ndarray | None = None
        self.kind = kind
        self.compute_value = self.value

    def zero_grad(self) -> None:
        self.grad = None
