"""The SimPy timing model (no numba here): components at tile/transaction granularity."""

from .engine import CoreTiming, DramChannel, LayerTiming, simulate_layer

__all__ = ["CoreTiming", "DramChannel", "LayerTiming", "simulate_layer"]
