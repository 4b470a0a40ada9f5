"""Bounds on the work one command may ask for, checked while reading and planning, before anything is allocated.

A hostile or mistyped file (a GEMM of 10^7 on every side, ``repeat: 100000000``, a YAML alias bomb) must end
in a one-line refusal naming the layer and the limit, not in minutes of growing memory and the OOM killer.
Every default admits each shipped network on each shipped arch, under hfp8, fp16 and fp32, with a wide
margin (the largest shipped figure is given beside each limit).

They are module constants so that a user who really needs more can raise them from Python before a run
(``hfp8sim.limits.MAX_GEMM_MACS = 10**15``); README ("Limits") lists them.  Callers read them at call time
(``limits.MAX_...``, never ``from hfp8sim.limits import MAX_...``) so such a change takes effect.

This module is at the bottom of the package with :mod:`hfp8sim.errors`: it imports nothing of hfp8sim.
"""

from __future__ import annotations

MAX_LAYERS = 100_000
"""Layers of one network after ``repeat`` blocks are expanded (shipped: 224, transformer_base_wmt)."""

MAX_GEMM_MACS = 10**13
"""MACs of one GEMM layer, batch x M x N x K (shipped: 4.0e10, gpt2_prefill1024's lm_head)."""

MAX_TILES_PER_LAYER = 1_000_000
"""Tiles of one GEMM layer in its tiling with the fewest tiles on the given array and scratchpads; tilings
with more tiles are not considered (shipped: 236,940, gpt2_prefill1024's lm_head on eyeriss_like in fp32)."""

MAX_TRACE_TENSOR_ELEMENTS = 2**27
"""Elements of one operand or output tensor that ``hfp8sim trace`` materialises with synthetic values
(134 million, 512 MiB of float32; shipped: 5.1e7, gpt2_prefill1024's lm_head)."""

MAX_YAML_DEPTH = 100
"""Nesting depth of mappings and lists in any YAML file hfp8sim reads (shipped files: under 10)."""

MAX_YAML_NODES = 2_000_000
"""Nodes of a YAML document with every alias expanded (an alias bomb grows exponentially; shipped files:
under 2,000)."""
