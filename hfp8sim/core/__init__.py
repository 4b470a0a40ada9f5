"""The core model: built once from (arch config, scheme), read by the datapath, schedule, timing and energy."""

from .model import ArraySpec, CoreModel, CoreTiming, NocSpec, VectorUnitSpec, element_bytes

__all__ = ["ArraySpec", "CoreModel", "CoreTiming", "NocSpec", "VectorUnitSpec", "element_bytes"]
