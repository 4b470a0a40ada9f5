"""Data-parallel training on N chips: topologies, chunked ring collectives, the bucketed and overlapped
training step in SimPy (full and reduced models), and ASTRA-sim workload export.  Plain inputs only: a step
profile per layer (cycles per pass, parameters) and link figures; docs/distributed.md describes the model."""
