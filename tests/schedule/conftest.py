"""Strategies shared by the mapper and fold-schedule tests: small GEMMs, arrays and scratchpads, with element
sizes taken from the shipped schemes' formats (storage bytes: ceil(bits / 8))."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hfp8sim.formats import get_format, get_scheme
from hfp8sim.schedule.mapper import ArraySpec, GemmProblem

DATAFLOWS = ("os", "ws", "is")
SCHEMES = ("hfp8", "fp8_e5m2", "ocp_fp8", "fp16")


def element_bytes(fmt) -> int:
    """Storage bytes of one element: 8-bit formats take 1, 16-bit 2, float32 4."""
    return math.ceil(get_format(fmt).bits / 8)


def examples(count: int):
    """Bounded Hypothesis runs (pure-Python checks over every tile; the suite must stay fast)."""
    return settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def gemm_problems(draw, max_dim: int = 16, max_batch: int = 2, scheme: str | None = None) -> GemmProblem:
    scheme = get_scheme(scheme or draw(st.sampled_from(SCHEMES)))
    # operand A is an activation (forward) or a gradient (backward pass); B a weight or a gradient
    a_fmt, b_fmt = (draw(st.sampled_from([scheme.forward, scheme.backward])) for _ in range(2))
    psum_fmt = draw(st.sampled_from([scheme.accumulate, get_format("float32")]))
    dims = st.integers(1, max_dim)
    return GemmProblem("layer", draw(dims), draw(dims), draw(dims), draw(st.integers(1, max_batch)),
                       element_bytes(a_fmt), element_bytes(b_fmt), element_bytes(scheme.forward),
                       element_bytes(psum_fmt))


# usable scratchpad bytes per tile: from unlimited down to a few elements (reuse on and off, some problems
# that cannot be mapped at all)
PAD_BYTES = st.sampled_from([math.inf, 4096, 1024, 256, 96, 32, 8])


@st.composite
def array_specs(draw, max_side: int = 8, pads=PAD_BYTES) -> ArraySpec:
    dataflow = draw(st.sampled_from(DATAFLOWS))
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    pair = draw(st.booleans())
    chunk = draw(st.sampled_from([None, 1, 2, 3, 4, 8])) if dataflow == "os" else None
    return ArraySpec(rows, cols, dataflow, pair, chunk, draw(pads), draw(pads), draw(pads))
