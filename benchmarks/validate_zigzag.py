"""Peer comparison with ZigZag: the same layers on matched hardware, priced with ZigZag's own per-access costs.

    python benchmarks/validate_zigzag.py [--venv DIR] [--layers NAME,...] [--json FILE] [--skip-zigzag]

ZigZag (KU Leuven's DSE tool, PyPI ``zigzag-dse`` 3.9.1) runs its ``tpu_like`` example hardware with its own
``tpu_like`` mapping file, minimising energy; hfp8sim runs ``arch_configs/validation/zigzag_tpu_like.yaml``, the
same hardware in hfp8sim's terms, priced by ``arch_configs/tech/zigzag_tpu_like.yaml``, ZigZag's costs per
access converted to pJ per byte.  Both run the same four layers: ResNet-18 ``layer1.0.conv1`` (3x3), ResNet-50
``layer1.0.conv3`` (1x1), MobileNetV2 ``features.3.conv.1.0`` (depthwise 3x3) and BERT-base
``layer.0.intermediate`` (128x768 @ 768x3072).  Per layer the script prints total energy and its breakdown
(MAC / registers / SRAM / DRAM), DRAM bytes against the real tensors' bytes, and cycles, side by side with the
ratios; ``docs/validation.md`` explains what still differs.

ZigZag is installed on first use into a scratch venv (default ``~/.cache/hfp8sim-peers/zigzag-venv``, or
``$HFP8SIM_PEERS_CACHE/zigzag-venv``, or ``--venv``), reused afterwards, and runs there in a subprocess (a
driver written to a temporary file prints JSON); hfp8sim never imports it.  The package imports ``six``
without declaring it, so the venv gets ``six`` too.  The first install takes 2-3 minutes and about 0.45 GB;
ZigZag then takes 25-30 s per layer on 2 shared cores.

The script also converts the installed ZigZag's ``tpu_like.yaml`` into hfp8sim's arch and tech numbers
(:func:`arch_from_zigzag`, :func:`tech_from_zigzag`) and says if they differ from the shipped files.

Exit status: 0 when both tools ran (whatever the ratios), 1 when either could not be installed or run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helper, also when loaded by path
from peer_venv import ensure_peer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ARCH_FILE = REPO / "arch_configs" / "validation" / "zigzag_tpu_like.yaml"
TECH_FILE = REPO / "arch_configs" / "tech" / "zigzag_tpu_like.yaml"

ZIGZAG_VERSION = "3.9.1"
ZIGZAG_REQUIREMENTS = (f"zigzag-dse=={ZIGZAG_VERSION}", "six")  # zigzag imports six without declaring it
HARDWARE = "tpu_like"
PIP_TIMEOUT_S = 1800
ZIGZAG_TIMEOUT_S = 1800

# The acceptance line of issue 11: on this layer, total energy within 1.5x of ZigZag's and DRAM bytes within
# 1.5x of the real tensors' bytes.
FOCUS_LAYER = "layer1.0.conv1"
ACCEPT_RATIO = 1.5

# Precisions as ZigZag's tpu_like computes them (8-bit W and I, 16-bit partial sums, 8-bit outputs) and as
# hfp8sim's hfp8 scheme stores them (FP8 operands and outputs, DLFloat16 partial sums): the same bytes.
OPERAND_BYTES = 1
PSUM_BYTES = 2
ZIGZAG_PRECISION = {"W": 8 * OPERAND_BYTES, "I": 8 * OPERAND_BYTES, "O": 8 * PSUM_BYTES, "O_final": 8}


# ---------------------------------------------------------------------------------------------- the layers

@dataclasses.dataclass(frozen=True)
class PeerLayer:
    """One layer both tools run: a convolution (C, H, W -> K with an R x S window) or a GEMM (M x K @ K x N)."""

    name: str
    origin: str
    op: str  # "conv2d" or "matmul"
    shape: dict[str, int]

    @property
    def output_hw(self) -> tuple[int, int]:
        s = self.shape
        pad, stride = s.get("padding", 0), s.get("stride", 1)
        return (s["H"] + 2 * pad - s["R"]) // stride + 1, (s["W"] + 2 * pad - s["S"]) // stride + 1

    @property
    def macs(self) -> int:
        s = self.shape
        if self.op == "matmul":
            return s["M"] * s["N"] * s["K"]
        p, q = self.output_hw
        return p * q * s["K"] * (s["C"] // s.get("groups", 1)) * s["R"] * s["S"]

    @property
    def tensor_bytes(self) -> int:
        """The real tensors at one byte an element: input (unpadded), weights, output; no schedule moves less."""
        s = self.shape
        if self.op == "matmul":
            return OPERAND_BYTES * (s["M"] * s["K"] + s["K"] * s["N"] + s["M"] * s["N"])
        p, q = self.output_hw
        weights = s["K"] * (s["C"] // s.get("groups", 1)) * s["R"] * s["S"]
        return OPERAND_BYTES * (s["C"] * s["H"] * s["W"] + weights + s["K"] * p * q)

    def hfp8sim_layer(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, **self.shape}


LAYERS = (
    PeerLayer("layer1.0.conv1", "ResNet-18, 3x3 conv 64->64 on 56x56, pad 1", "conv2d",
              {"C": 64, "H": 56, "W": 56, "K": 64, "R": 3, "S": 3, "padding": 1}),
    PeerLayer("layer1.0.conv3", "ResNet-50, 1x1 conv 64->256 on 56x56", "conv2d",
              {"C": 64, "H": 56, "W": 56, "K": 256, "R": 1, "S": 1}),
    PeerLayer("features.3.conv.1.0", "MobileNetV2, depthwise 3x3 conv, 144 channels on 56x56, pad 1", "conv2d",
              {"C": 144, "H": 56, "W": 56, "K": 144, "R": 3, "S": 3, "padding": 1, "groups": 144}),
    PeerLayer("layer.0.intermediate", "BERT-base FFN up-projection, 128x768 @ 768x3072", "matmul",
              {"M": 128, "N": 3072, "K": 768}),
)


def zigzag_layer(layer: PeerLayer, layer_id: int = 0) -> dict[str, Any]:
    """The layer in ZigZag's workload format, as ZigZag's own ONNX parser writes convs and GEMMs: a grouped
    conv has a G loop with K and C per group, and the partially relevant input sizes are the unpadded input
    (ZigZag subtracts the padding from the window's extent, so padded zeros are not fetched)."""
    s = layer.shape
    common = {"id": layer_id, "name": layer.name, "operand_precision": dict(ZIGZAG_PRECISION),
              "operand_source": {"I": layer_id}}
    if layer.op == "matmul":
        return {**common, "operator_type": "Gemm", "equation": "O[d][k]+=I[d][c]*W[c][k]",
                "dimension_relations": [], "loop_dims": ["C", "D", "K"], "loop_sizes": [s["K"], s["M"], s["N"]]}
    groups, stride, pad = s.get("groups", 1), s.get("stride", 1), s.get("padding", 0)
    p, q = layer.output_hw
    if groups > 1:
        equation = "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]"
        dims = {"B": 1, "K": s["K"] // groups, "G": groups, "OY": p, "OX": q, "C": s["C"] // groups}
    else:
        equation = "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]"
        dims = {"B": 1, "K": s["K"], "C": s["C"], "OY": p, "OX": q}
    dims.update(FY=s["R"], FX=s["S"])
    return {**common, "operator_type": "Conv", "equation": equation,
            "dimension_relations": [f"ix={stride}*ox+1*fx", f"iy={stride}*oy+1*fy"],
            "loop_dims": list(dims), "loop_sizes": list(dims.values()),
            "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [s["W"], s["H"]], "padding": [[pad, pad], [pad, pad]]}


def zigzag_extra_mappings(layers: tuple[PeerLayer, ...]) -> list[dict[str, Any]]:
    """ZigZag's tpu_like mapping unrolls K and C over the array, which a depthwise conv does not have (K = C = 1
    per group: one PE of 1024).  For a depthwise layer, the mapping ZigZag's own file gives its G-indexed
    layers (Add, Pooling): 32 groups across D1."""
    return [{"name": layer.name, "spatial_mapping": {"D1": ["G, 32"], "D2": ["C, 1"]},
             "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}
            for layer in layers if layer.shape.get("groups", 1) > 1]


# ---------------------------------------------------------------------------------------------- conversion

@dataclasses.dataclass(frozen=True)
class ZigzagMemory:
    """One memory of a ZigZag hardware file, with what the conversion needs."""

    name: str
    operands: tuple[str, ...]
    size_bits: float
    read_pj: float  # per access of the read port's bandwidth_max bits
    write_pj: float
    read_bits: float  # bandwidth_max of the read (or read/write) port
    write_bits: float
    latency: float
    per_pe: bool  # served_dimensions is empty: one instance per PE

    @property
    def read_pj_per_byte(self) -> float:
        return self.read_pj / (self.read_bits / 8)

    @property
    def write_pj_per_byte(self) -> float:
        return self.write_pj / (self.write_bits / 8)


def _port_bits(ports: list[dict[str, Any]], kind: str, name: str) -> float:
    widths = [p["bandwidth_max"] for p in ports if p["type"] in (kind, "read_write")]
    if not widths:
        raise ValueError(f"ZigZag memory {name!r} has no {kind} port")
    return float(max(widths))


def zigzag_memories(hardware: dict[str, Any]) -> dict[str, ZigzagMemory]:
    """The memories of a parsed ZigZag hardware yaml by name (its ``memories`` section)."""
    memories = {}
    for name, m in hardware["memories"].items():
        memories[name] = ZigzagMemory(
            name=name, operands=tuple(m["operands"]), size_bits=float(m["size"]), read_pj=float(m["r_cost"]),
            write_pj=float(m["w_cost"]), read_bits=_port_bits(m["ports"], "read", name),
            write_bits=_port_bits(m["ports"], "write", name), latency=float(m.get("latency", 0)),
            per_pe=not m.get("served_dimensions"))
    return memories


def memory_roles(hardware: dict[str, Any]) -> dict[str, ZigzagMemory]:
    """The tpu_like hierarchy's four memories by role: ``weight_rf`` and ``psum_rf`` (per PE, holding the
    weights I2 and the outputs O), ``sram`` (shared, holding inputs I1 and outputs) and ``dram`` (the largest
    memory, holding every operand).  Any other shape of hierarchy is refused with ValueError."""
    memories = zigzag_memories(hardware)
    dram = max(memories.values(), key=lambda m: m.size_bits)
    roles: dict[str, ZigzagMemory] = {"dram": dram}
    for m in memories.values():
        if m is dram:
            continue
        role = ("weight_rf" if m.operands == ("I2",) else "psum_rf" if m.operands == ("O",) else None) \
            if m.per_pe else ("sram" if set(m.operands) == {"I1", "O"} else None)
        if role is None or role in roles:
            raise ValueError(f"ZigZag memory {m.name!r} (operands {list(m.operands)}) does not fit a tpu_like "
                             "hierarchy (per-PE weight and output RFs, one I/O SRAM, DRAM)")
        roles[role] = m
    missing = {"weight_rf", "psum_rf", "sram"} - set(roles)
    if missing or set(dram.operands) != {"I1", "I2", "O"}:
        raise ValueError(f"not a tpu_like hierarchy: missing {sorted(missing) or 'a DRAM holding I1, I2 and O'}")
    return roles


def _pe_count(hardware: dict[str, Any]) -> int:
    return math.prod(hardware["operational_array"]["sizes"])


def tech_from_zigzag(hardware: dict[str, Any]) -> dict[str, float]:
    """hfp8sim tech-table numbers from ZigZag's costs (pJ per access / (port bits / 8) = pJ per byte).

    The PE-register price is per byte of what hfp8sim latches per FP8 MAC (``OPERAND_BYTES`` of operand,
    ``PSUM_BYTES`` of partial sum), each byte at the ZigZag register file that holds that kind of data.  The
    SRAM curve has two points: the weight scratchpad's size (the per-PE weight RFs together) at the weight
    RF's price and the I/O scratchpads' size at the shared SRAM's."""
    roles = memory_roles(hardware)
    weight_rf, psum_rf, sram, dram = roles["weight_rf"], roles["psum_rf"], roles["sram"], roles["dram"]
    rf_mean = (weight_rf.read_pj_per_byte + weight_rf.write_pj_per_byte) / 2
    psum_mean = (psum_rf.read_pj_per_byte + psum_rf.write_pj_per_byte) / 2
    arch = arch_from_zigzag(hardware)
    return {
        "mac_pj.fp8": float(hardware["operational_array"]["unit_energy"]),
        "pe_register_pj_per_byte": (OPERAND_BYTES * rf_mean + PSUM_BYTES * psum_mean) / (OPERAND_BYTES + PSUM_BYTES),
        "sram.weight.size_kib": arch["scratchpads.weight.size_kib"],
        "sram.weight.read": weight_rf.read_pj_per_byte, "sram.weight.write": weight_rf.write_pj_per_byte,
        "sram.io.size_kib": arch["scratchpads.input.size_kib"],
        "sram.io.read": sram.read_pj_per_byte, "sram.io.write": sram.write_pj_per_byte,
        "dram.read": dram.read_pj_per_byte, "dram.write": dram.write_pj_per_byte,
    }


def arch_from_zigzag(hardware: dict[str, Any]) -> dict[str, float]:
    """hfp8sim arch numbers of the same hardware: the array; the per-PE weight RFs together as the weight
    scratchpad (capacity and one RF port per PE); the shared I/O SRAM split in two equal input and output
    scratchpads (capacity and port bandwidth halved: they share one macro); DRAM at its port's width; the
    scratchpad-to-array link as wide as the ports that feed the array."""
    roles = memory_roles(hardware)
    rows, cols = hardware["operational_array"]["sizes"]
    pes = _pe_count(hardware)
    weight_rf, sram, dram = roles["weight_rf"], roles["sram"], roles["dram"]
    half_sram_kib = sram.size_bits / 8 / 1024 / 2
    return {
        "array.rows": rows, "array.cols": cols,
        "scratchpads.weight.size_kib": weight_rf.size_bits * pes / 8 / 1024,
        "scratchpads.weight.read_bytes_per_cycle": weight_rf.read_bits / 8 * pes,
        "scratchpads.weight.write_bytes_per_cycle": weight_rf.write_bits / 8 * pes,
        "scratchpads.input.size_kib": half_sram_kib, "scratchpads.output.size_kib": half_sram_kib,
        "scratchpads.input.read_bytes_per_cycle": sram.read_bits / 8 / 2,
        "scratchpads.input.write_bytes_per_cycle": sram.write_bits / 8 / 2,
        "scratchpads.output.read_bytes_per_cycle": sram.read_bits / 8 / 2,
        "scratchpads.output.write_bytes_per_cycle": sram.write_bits / 8 / 2,
        "dram.bw_bytes_per_cycle": min(dram.read_bits, dram.write_bits) / 8,
        "dram.latency_cycles": dram.latency,
        "interconnect.bw_bytes_per_cycle": sram.read_bits / 8 + weight_rf.read_bits / 8 * pes,
    }


def shipped_tech_numbers(tech: Any) -> dict[str, float]:
    """The same numbers read from a loaded hfp8sim tech table (``hfp8sim.config.tech.TechTable``)."""
    m = tech.model
    weight, io = m.sram_pj_per_byte.points
    dram = m.dram_pj_per_byte["zigzag_dram"]
    return {"mac_pj.fp8": m.mac_pj.fp8.value, "pe_register_pj_per_byte": m.pe_register_pj_per_byte.value,
            "sram.weight.size_kib": weight.size_kib, "sram.weight.read": weight.read, "sram.weight.write": weight.write,
            "sram.io.size_kib": io.size_kib, "sram.io.read": io.read, "sram.io.write": io.write,
            "dram.read": dram.read, "dram.write": dram.write}


def shipped_arch_numbers(arch: Any) -> dict[str, float]:
    """The same numbers read from a loaded hfp8sim arch config (``hfp8sim.config.arch.ArchConfig``)."""
    m = arch.model
    numbers = {"array.rows": m.array.rows, "array.cols": m.array.cols,
               "dram.bw_bytes_per_cycle": m.dram.bw_bytes_per_cycle, "dram.latency_cycles": m.dram.latency_cycles,
               "interconnect.bw_bytes_per_cycle": m.interconnect.bw_bytes_per_cycle}
    for pad in ("weight", "input", "output"):
        for key in ("size_kib", "read_bytes_per_cycle", "write_bytes_per_cycle"):
            numbers[f"scratchpads.{pad}.{key}"] = getattr(getattr(m.scratchpads, pad), key)
    return numbers


def differences(converted: dict[str, float], shipped: dict[str, float]) -> list[str]:
    """``key: converted vs shipped`` for every number that differs by more than a rounding."""
    return [f"{key}: {value:g} from ZigZag vs {shipped.get(key)!r} shipped" for key, value in converted.items()
            if shipped.get(key) is None or not math.isclose(value, shipped[key], rel_tol=1e-9, abs_tol=1e-12)]


# ---------------------------------------------------------------------------------------------- ZigZag

# Runs inside the scratch venv: argv[1] is a JSON spec {hardware, layers, extra_mappings, work}; prints JSON on
# its last line: the version, the hardware file as parsed, and per layer the energy by memory and the bytes
# each memory read and wrote (accesses x the port's bandwidth_max bits, as ZigZag's energy counts them).
ZIGZAG_DRIVER = textwrap.dedent("""\
    import contextlib, io, json, logging, os, sys, time
    from importlib.metadata import version
    import yaml, zigzag
    from zigzag import api
    from zigzag.hardware.architecture.memory_port import DataDirection

    spec = json.load(open(sys.argv[1]))
    root = os.path.dirname(zigzag.__file__)
    hardware_file = os.path.join(root, "inputs", "hardware", spec["hardware"] + ".yaml")
    with open(os.path.join(root, "inputs", "mapping", spec["hardware"] + ".yaml")) as f:
        mapping = yaml.safe_load(f) + spec["extra_mappings"]
    mapping_file = os.path.join(spec["work"], "mapping.yaml")
    with open(mapping_file, "w") as f:
        yaml.safe_dump(mapping, f)

    def memories_of(cme):
        out = {}
        for op, accesses in cme.memory_word_access.items():
            mem_op = cme.memory_operand_links.layer_to_mem_op(op)
            levels = cme.accelerator.memory_hierarchy.get_memory_levels(mem_op=mem_op)
            for i, (count, level) in enumerate(zip(accesses, levels)):
                m = out.setdefault(level.name, {"energy_pj": 0.0, "read_bytes": 0.0, "write_bytes": 0.0})
                m["energy_pj"] += cme.mem_energy_breakdown[op][i]
                for d in DataDirection:
                    bits = level.get_max_bandwidth(mem_op, d) or 0
                    m["read_bytes" if d.value.startswith("rd") else "write_bytes"] += count.get(d) * bits / 8
        return out

    results = []
    logging.disable(logging.CRITICAL)
    for layer in spec["layers"]:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            energy, latency, cmes = api.get_hardware_performance_zigzag(
                workload=[layer], accelerator=hardware_file, mapping=mapping_file, opt="energy",
                dump_folder=os.path.join(spec["work"], "out", str(len(results))), loma_show_progress_bar=False)
        cme = cmes[0][1][0][0]
        results.append({"name": layer["name"], "energy_pj": energy, "mac_pj": cme.mac_energy,
                        "latency_cycles": latency, "ideal_cycles": cme.ideal_cycle,
                        "memories": memories_of(cme), "spatial_mapping": str(cme.spatial_mapping),
                        "temporal_mapping": str(cme.temporal_mapping), "wall_s": time.perf_counter() - t0})
    with open(hardware_file) as f:
        hardware = yaml.safe_load(f)
    print(json.dumps({"zigzag": version("zigzag-dse"), "hardware_file": hardware_file, "hardware": hardware,
                      "layers": results}))
""")

PROBE = ("import importlib.metadata as m, json, six, zigzag.api; "
         "print(json.dumps({'zigzag': m.version('zigzag-dse'), 'numpy': m.version('numpy')}))")


def ensure_zigzag(venv: Path) -> tuple[Path, dict, float | None]:
    """(venv python, package versions, install seconds or None if reused).  Raises RuntimeError on failure."""
    return ensure_peer(venv, ZIGZAG_REQUIREMENTS, PROBE, "zigzag", ZIGZAG_VERSION, timeout_s=PIP_TIMEOUT_S)


def run_zigzag(python: Path, layers: tuple[PeerLayer, ...]) -> dict:
    """ZigZag's results for ``layers`` (one ZigZag run per layer, in one subprocess)."""
    with tempfile.TemporaryDirectory(prefix="hfp8sim-zigzag-") as work:
        spec = {"hardware": HARDWARE, "layers": [zigzag_layer(layer) for layer in layers],
                "extra_mappings": zigzag_extra_mappings(layers), "work": work}
        (Path(work) / "spec.json").write_text(json.dumps(spec))
        (Path(work) / "driver.py").write_text(ZIGZAG_DRIVER)
        try:
            proc = subprocess.run([str(python), str(Path(work) / "driver.py"), str(Path(work) / "spec.json")],
                                  capture_output=True, text=True, cwd=work, timeout=ZIGZAG_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"ZigZag did not finish within {ZIGZAG_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        raise RuntimeError("ZigZag run failed: " + " | ".join(tail))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def zigzag_figures(run: dict, roles: dict[str, ZigzagMemory]) -> dict[str, dict[str, float]]:
    """Per layer: energy by the comparison's components, DRAM bytes, cycles."""
    per_pe = {roles["weight_rf"].name, roles["psum_rf"].name}
    figures = {}
    for layer in run["layers"]:
        memories = layer["memories"]
        dram = memories.get(roles["dram"].name, {"energy_pj": 0.0, "read_bytes": 0.0, "write_bytes": 0.0})
        figures[layer["name"]] = {
            "total": layer["energy_pj"], "mac": layer["mac_pj"],
            "registers": sum(m["energy_pj"] for name, m in memories.items() if name in per_pe),
            "sram": sum(m["energy_pj"] for name, m in memories.items()
                        if name not in per_pe and name != roles["dram"].name),
            "dram": dram["energy_pj"], "other": 0.0,
            "sram_bytes": sum(m["read_bytes"] + m["write_bytes"] for name, m in memories.items()
                              if name not in per_pe and name != roles["dram"].name),
            "dram_bytes": dram["read_bytes"] + dram["write_bytes"], "cycles": layer["latency_cycles"],
        }
    return figures


# ---------------------------------------------------------------------------------------------- hfp8sim

def hfp8sim_figures(layers: tuple[PeerLayer, ...]) -> tuple[dict[str, dict[str, float]], Any]:
    """Per layer, each simulated alone (no on-chip reuse between layers, as ZigZag runs them): energy by the
    comparison's components, DRAM bytes, cycles.  The weight scratchpad stands for ZigZag's per-PE weight
    register files, so its energy counts with the registers."""
    from hfp8sim.config.arch import load_arch
    from hfp8sim.run import simulate_network
    from hfp8sim.workloads.load import parse_workload

    arch = load_arch(ARCH_FILE)
    figures = {}
    for layer in layers:
        net = parse_workload({"name": f"zigzag_peer_{layer.name}", "layers": [layer.hfp8sim_layer()]},
                             f"benchmarks/validate_zigzag.py: {layer.name}")
        r = simulate_network(arch, net).layers[0]
        e = r.energy
        figures[layer.name] = {
            "total": e["energy_total_pj"], "mac": e["energy_mac_pj"],
            "registers": e["energy_pe_registers_pj"] + e["energy_sram_weight_pj"],
            "sram": e["energy_sram_input_pj"] + e["energy_sram_output_pj"], "dram": e["energy_dram_pj"],
            "other": e["energy_edge_pj"] + e["energy_noc_pj"] + e["energy_vector_pj"] + e["energy_static_pj"],
            "sram_bytes": r.sram_input_read_bytes + r.sram_input_write_bytes + r.sram_output_read_bytes
            + r.sram_output_write_bytes,
            "dram_bytes": r.dram_read_bytes + r.dram_write_bytes, "cycles": r.cycles, "macs": r.macs,
            "mapping": f"tile {r.tile_shape}, loop order {r.loop_order}, {r.tiles} tiles, {r.folds} folds",
        }
    return figures, arch


# ---------------------------------------------------------------------------------------------- report

ENERGY_ROWS = (("total", "energy total (uJ)"), ("mac", "  MAC"), ("registers", "  registers"),
               ("sram", "  SRAM"), ("dram", "  DRAM"), ("other", "  other (leakage, wires, vector)"))


def ratio(ours: float, theirs: float | None) -> str:
    return "" if theirs is None or not theirs else f"{ours / theirs:.2f}x"


def layer_lines(layer: PeerLayer, ours: dict[str, float], theirs: dict[str, float] | None) -> list[str]:
    """The side-by-side block of one layer (ZigZag's column empty when it did not run)."""
    def row(label: str, a: float, b: float | None, fmt: str) -> str:
        peer = "-" if b is None else format(b, fmt)
        return f"  {label:<34}{format(a, fmt):>14}{peer:>14}{ratio(a, b):>9}"

    lines = [f"{layer.name}  ({layer.origin}): {layer.macs:,} MACs", f"  {'':<34}{'hfp8sim':>14}{'ZigZag':>14}"
             f"{'ratio':>9}"]
    for key, label in ENERGY_ROWS:
        lines.append(row(label, ours[key] / 1e6, None if theirs is None else theirs[key] / 1e6, ",.2f"))
    tensors = layer.tensor_bytes
    lines.append(row("I/O SRAM bytes (read + write)", ours["sram_bytes"],
                     None if theirs is None else theirs["sram_bytes"], ",.0f"))
    lines.append(row("DRAM bytes", ours["dram_bytes"], None if theirs is None else theirs["dram_bytes"], ",.0f"))
    lines.append(row("  / real tensors' bytes " + f"({tensors:,})", ours["dram_bytes"] / tensors,
                     None if theirs is None else theirs["dram_bytes"] / tensors, ".2f"))
    lines.append(row("cycles", ours["cycles"], None if theirs is None else theirs["cycles"], ",.0f"))
    lines.append(f"  hfp8sim mapping: {ours['mapping']}")
    return lines


def acceptance_lines(layer: PeerLayer, ours: dict[str, float], theirs: dict[str, float] | None) -> list[str]:
    """Issue 11's acceptance line on the focus layer: energy within 1.5x of ZigZag's, DRAM bytes within 1.5x
    of the tensors'."""
    dram_ratio = ours["dram_bytes"] / layer.tensor_bytes
    lines = [f"acceptance on {layer.name} (within {ACCEPT_RATIO:g}x):"]
    if theirs is None:
        lines.append("  total energy vs ZigZag: not measured (ZigZag did not run)")
    else:
        energy_ratio = ours["total"] / theirs["total"]
        ok = 1 / ACCEPT_RATIO <= energy_ratio <= ACCEPT_RATIO
        lines.append(f"  total energy vs ZigZag: {ours['total'] / 1e6:,.2f} / {theirs['total'] / 1e6:,.2f} uJ = "
                     f"{energy_ratio:.2f}x -> {'met' if ok else 'NOT met'}")
    lines.append(f"  DRAM bytes vs real tensors: {ours['dram_bytes']:,.0f} / {layer.tensor_bytes:,} B = "
                 f"{dram_ratio:.2f}x -> {'met' if dram_ratio <= ACCEPT_RATIO else 'NOT met'}")
    return lines


def config_check_lines(run: dict, arch: Any) -> list[str]:
    """Whether the shipped matched configs equal the conversion of the installed ZigZag's hardware file."""
    from hfp8sim.config.tech import load_tech

    hardware = run["hardware"]
    problems = differences(tech_from_zigzag(hardware), shipped_tech_numbers(load_tech(TECH_FILE)))
    problems += differences(arch_from_zigzag(hardware), shipped_arch_numbers(arch))
    where = f"ZigZag {run['zigzag']} {run['hardware_file']}"
    if not problems:
        return [f"matched configs: {TECH_FILE.relative_to(REPO)} and {ARCH_FILE.relative_to(REPO)} equal the "
                f"conversion of {where}"]
    return [f"matched configs DIFFER from the conversion of {where}:", *(f"  {p}" for p in problems)]


# ---------------------------------------------------------------------------------------------- main

def select_layers(names: str | None) -> tuple[PeerLayer, ...]:
    if not names:
        return LAYERS
    known = {layer.name: layer for layer in LAYERS}
    unknown = [n for n in names.split(",") if n not in known]
    if unknown:
        raise SystemExit(f"--layers: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names.split(","))


def peer_run(args: argparse.Namespace, layers: tuple[PeerLayer, ...]) -> tuple[dict | None, str]:
    """(ZigZag's run or None, a line saying what happened)."""
    if args.skip_zigzag:
        return None, "ZigZag skipped (--skip-zigzag)"
    try:
        python, info, install_s = ensure_zigzag(args.venv.expanduser())
        t0 = time.perf_counter()
        run = run_zigzag(python, layers)
    except (RuntimeError, OSError, ValueError) as exc:
        return None, f"ZigZag NOT run: {exc}"
    installed = "reused" if install_s is None else f"installed in {install_s:.0f} s"
    return run, (f"ZigZag {info['zigzag']} (numpy {info['numpy']}, venv {args.venv}, {installed}): {HARDWARE}, "
                 f"opt=energy, {time.perf_counter() - t0:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cache = Path(os.environ.get("HFP8SIM_PEERS_CACHE", Path.home() / ".cache" / "hfp8sim-peers"))
    ap.add_argument("--venv", type=Path, default=cache / "zigzag-venv",
                    help="ZigZag's scratch venv (created on first use; env HFP8SIM_PEERS_CACHE sets its parent)")
    ap.add_argument("--layers", help=f"comma-separated subset of: {', '.join(layer.name for layer in LAYERS)}")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    ap.add_argument("--skip-zigzag", action="store_true", help="hfp8sim's side only (no install, no ZigZag run)")
    args = ap.parse_args()
    layers = select_layers(args.layers)
    try:
        ours, arch = hfp8sim_figures(layers)
    except Exception as exc:  # noqa: BLE001 - any failure to run is reported in one line with exit status 1
        print(f"hfp8sim failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    run, note = peer_run(args, layers)
    theirs = zigzag_figures(run, memory_roles(run["hardware"])) if run else {}
    print(f"hfp8sim on {ARCH_FILE.relative_to(REPO)} (scheme {arch.scheme.name}); {note}")
    if run:
        print("\n".join(config_check_lines(run, arch)))
    for layer in layers:
        print()
        print("\n".join(layer_lines(layer, ours[layer.name], theirs.get(layer.name))))
    focus = next((layer for layer in layers if layer.name == FOCUS_LAYER), None)
    if focus is not None:
        print()
        print("\n".join(acceptance_lines(focus, ours[focus.name], theirs.get(focus.name))))
    if args.json:
        args.json.write_text(json.dumps({"hfp8sim": ours, "zigzag": theirs, "zigzag_run": run, "note": note},
                                        indent=1, default=str))
    return 0 if (run or args.skip_zigzag) else 1


if __name__ == "__main__":
    sys.exit(main())
