"""HFP8 training on the bit-accurate datapath (issue 13).

``tensors`` (:class:`Parameter`), ``scaling`` (tensor scaling recipes and encoding statistics), ``ops``
(:class:`TrainingOps`: every GEMM of every pass through the datapath, with a documented FP8 error bound;
:class:`Float64Ops`, the float64 reference) and ``layers`` (modules with forward and backward passes, and the
softmax cross-entropy loss), ``models`` (the study's networks), ``loss_scaling`` (static and dynamic loss
scalers), ``optim`` (SGD, Adam and the weight-update rules: FP32 masters, FP16 stochastic rounding, IBM's
round-off residual, FP16 nearest), ``data`` (digits, Fashion-MNIST, pydoc text) and ``parallel`` (data-parallel
numerics: ring reduce-scatter, sharded update, FP8/FP16/FP32 all-gather).
"""

from ..errors import TrainingError
from .layers import (
    GELU, AvgPool2d, BatchNorm, Conv2d, Embedding, Flatten, GlobalAvgPool, LayerNorm, Linear, MaxPool2d, Module,
    MultiHeadAttention, ReLU, ReLU6, Residual, Sequential, SoftmaxCrossEntropy,
)
from .ops import Float64Ops, GemmCall, TrainingOps, gemm_error_bound
from .scaling import CurrentScaling, DelayedScaling, FixedBias, QuantStats, ScalingRecipe
from .tensors import Parameter

__all__ = [
    "AvgPool2d", "BatchNorm", "Conv2d", "CurrentScaling", "DelayedScaling", "Embedding", "FixedBias", "Flatten",
    "Float64Ops", "GELU", "GemmCall", "GlobalAvgPool", "LayerNorm", "Linear", "MaxPool2d", "Module",
    "MultiHeadAttention", "Parameter", "QuantStats", "ReLU", "ReLU6", "Residual", "ScalingRecipe", "Sequential",
    "SoftmaxCrossEntropy", "TrainingError", "TrainingOps", "gemm_error_bound",
]
