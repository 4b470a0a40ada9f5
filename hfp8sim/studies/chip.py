"""The reference-chip study: the IBM-like 4-core HFP8 chip simulated at its two published operating points,
compared with the published figures (``shared/reference/hfp8_facts.md`` section 3.3, ``energy_facts.md``
section 5).

For each operating point (``peak`` 1.6 GHz / 0.75 V, ``efficient`` 1.0 GHz / 0.55 V) and each workload (a dense
2048^3 GEMM, ResNet-50, BERT-base at 128 tokens; batch 1), in HFP8 and FP16: peak and sustained TFLOPS (1 MAC = 2
FLOPs), TFLOPS/W and pJ per MAC, both on chip (every component but DRAM: what a chip's published efficiency
covers) and with the DRAM charge (the system).  The comparison rows state the simulated value, the published
one, their ratio and the basis of both (on chip, or with DRAM for the H100 figure, which includes its HBM); the
table is not tuned to close the gap.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
from pathlib import Path

from ..config.arch import parse_arch
from ..config.tech import load_tech
from ..core.model import CoreModel
from ..energy.accounting import EnergyAccountant
from ..io import read_yaml, shipped_dir
from ..run import simulate_network
from ..workloads import MatMul, Network, load_workload, resolve_workload

REFERENCE_ARCH = "ibm_like_4core.yaml"
DENSE_SIZE = 2048
WORKLOADS = ("resnet50", "bert_base_seq128")
OPERATING_POINTS = ("peak", "efficient")

# Published anchors (value, what, source)
PUBLISHED = {
    "peak_tflops_hfp8": (25.6, "peak HFP8 TFLOPS at 1.6 GHz, 0.75 V", "Agrawal et al., ISSCC 2021 (26.2 in JSSC 2022)"),
    "tflops_per_watt_efficient": (3.5, "HFP8 TFLOPS/W at 1.0 GHz, 0.55 V", "ISSCC 2021 / RaPiD ISCA 2021 (3.58 JSSC)"),
    "tflops_per_watt_peak": (1.9, "HFP8 TFLOPS/W at 1.6 GHz peak", "Linley Newsletter 2021 [S]"),
    "h100_pj_per_fp8_fma": (0.71, "pJ per FP8 FMA, NVIDIA H100 SXM at 700 W TDP, incl. HBM",
                            "NVIDIA datasheet figures via energy_facts.md section 5 [S/D]"),
}
ON_CHIP = "on chip (all energy but DRAM), as the published chip figure"
WITH_DRAM = "with DRAM (HBM2 charge included), as the published board figure"


@dataclasses.dataclass(frozen=True)
class ChipPoint:
    operating_point: str
    clock_ghz: float
    voltage_v: float
    workload: str
    scheme: str
    peak_tflops: float
    sustained_tflops: float
    utilization: float
    tflops_per_watt: float  # with DRAM
    pj_per_mac: float  # with DRAM
    on_chip_tflops_per_watt: float  # all but DRAM: what a chip's own power covers
    on_chip_pj_per_mac: float
    dram_pj_per_mac: float  # the DRAM charge, reported on its own
    average_power_w: float
    energy_mac_share: float
    energy_dram_share: float
    energy_static_share: float
    energy_clock_share: float
    leaking_area_mm2: float  # the chip area the leakage model powers (the die is 36 mm^2)


def reference_arch(operating_point: str):
    """The reference chip at one operating point: the clock follows the point."""
    path = shipped_dir("arch_configs") / REFERENCE_ARCH
    data = copy.deepcopy(read_yaml(path))
    tech = load_tech(data.get("energy", {}).get("tech", "tech_7nm"))
    point = tech.operating_point(operating_point)
    data["clock_ghz"] = point.clock_ghz
    data.setdefault("energy", {})["operating_point"] = operating_point
    return parse_arch(data, f"{path} @ {operating_point}"), point


def dense_gemm(size: int) -> Network:
    return Network(f"dense_gemm_{size}", (MatMul(name="gemm", M=size, N=size, K=size),),
                   source=f"dense {size}^3 GEMM")


def run_chip_study(progress=None, *, dense_size: int = DENSE_SIZE, workloads=WORKLOADS) -> list[ChipPoint]:
    points = []
    networks = [dense_gemm(dense_size)] + [load_workload(resolve_workload(name)) for name in workloads]
    for op in OPERATING_POINTS:
        arch, point = reference_arch(op)
        for network in networks:
            workload = network.name
            for scheme in ("hfp8", "fp16"):
                if progress:
                    progress(f"{op}: {workload} {scheme}")
                s = simulate_network(arch, network, scheme=scheme).summary()
                peak_macs = s["peak_macs_per_cycle"]  # the chip's, at the scheme's operand width
                total = s["energy_total_pj"]
                points.append(ChipPoint(
                    op, point.clock_ghz, point.voltage_v, workload, scheme,
                    peak_tflops=2 * peak_macs * point.clock_ghz / 1e3,
                    sustained_tflops=2 * s["macs"] / s["seconds"] / 1e12, utilization=s["utilization"],
                    tflops_per_watt=s["tflops_per_watt"], pj_per_mac=s["pj_per_mac"],
                    on_chip_tflops_per_watt=s["on_chip_tflops_per_watt"], on_chip_pj_per_mac=s["on_chip_pj_per_mac"],
                    dram_pj_per_mac=s["energy_dram_pj"] / s["macs"],
                    average_power_w=s["average_power_w"], energy_mac_share=s["energy_mac_pj"] / total,
                    energy_dram_share=s["energy_dram_pj"] / total, energy_static_share=s["energy_static_pj"] / total,
                    energy_clock_share=s["energy_clock_pj"] / total,
                    leaking_area_mm2=EnergyAccountant(CoreModel.build(arch, arch.resolve_scheme(scheme)))
                    .leaking_area_mm2))
    return points


def comparisons(points: list[ChipPoint]) -> list[dict]:
    """Simulated versus published, with the ratio."""
    def pick(op, scheme):
        return next(p for p in points if (p.operating_point, p.scheme) == (op, scheme)
                    and p.workload.startswith("dense_gemm"))

    dense_peak, dense_eff = pick("peak", "hfp8"), pick("efficient", "hfp8")
    dense = dense_peak.workload.replace("dense_gemm_", "dense ") + "^3 GEMM"
    rows = [  # like with like: chip efficiencies on chip, the H100's board figure with the DRAM charge
        ("peak_tflops_hfp8", dense_peak.peak_tflops, "peak rate"),
        ("tflops_per_watt_efficient", dense_eff.on_chip_tflops_per_watt, ON_CHIP),
        ("tflops_per_watt_peak", dense_peak.on_chip_tflops_per_watt, ON_CHIP),
        ("h100_pj_per_fp8_fma", dense_peak.pj_per_mac, WITH_DRAM),
    ]
    out = []
    for key, simulated, basis in rows:
        published, what, source = PUBLISHED[key]
        out.append({"quantity": what, "simulated": simulated, "published": published,
                    "ratio_simulated_to_published": simulated / published, "basis": basis, "source": source,
                    "simulated_on": f"{dense}, HFP8" + (" (hfp8sim chip vs H100)" if "h100" in key else "")})
    return out


def write_chip_study(points: list[ChipPoint], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / "chip_points.csv"
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in dataclasses.fields(ChipPoint)])
        writer.writeheader()
        for p in points:
            writer.writerow(dataclasses.asdict(p))
    compare = out_dir / "chip_vs_published.csv"
    rows = comparisons(points)
    with compare.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return table, compare
