"""Regenerate the SRAM bank table of a tech file (``sram_access_pj``) with CACTI 7 as shipped in ZigZag.

Run it with the python of a scratch venv holding ``zigzag-dse`` (its CACTI build is used as is):

    python3 -m venv /tmp/cacti && /tmp/cacti/bin/pip install zigzag-dse six
    /tmp/cacti/bin/python tools/cacti_sram_grid.py [--tech 0.022]

It prints one YAML line per (bank capacity, port width): pJ per read and per write access, area and leakage.
The settings are ZigZag's defaults (energy_facts.md section 4.3): "ram", one bank, one read-write port,
itrs-hp cells and periphery, 360 K, ECC, ED^2 optimisation; the block (line) size is the port width.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

CAPACITIES_KIB = (8, 32, 128, 512, 2048)
PORT_BITS = (64, 128, 256, 512, 1024, 2048)


def run_cacti(cacti_dir: Path, size_bytes: int, port_bits: int, technology: float) -> dict[str, float]:
    from zigzag.cacti.cacti_master.cacti_config_creator import CactiConfig

    out_dir = cacti_dir / "self_gen"
    out_dir.mkdir(exist_ok=True)
    result = out_dir / "cache.cfg.out"
    if result.exists():
        result.unlink()
    names = ["mem_type", "cache_size", "IO_bus_width", "ex_rd_port", "ex_wr_port", "rd_wr_port", "bank_count",
             "technology", "line_size"]
    values = ['"ram"', size_bytes, port_bits, 0, 0, 1, 1, technology, port_bits // 8]
    cwd = os.getcwd()
    try:
        CactiConfig().cacti_auto(["single", [names, values]], str(cacti_dir), str(out_dir / "cache.cfg"))
    finally:
        os.chdir(cwd)
    header, row = result.read_text().splitlines()[:2]
    fields = dict(zip([h.strip() for h in header.split(",")], row.split(",")))
    return {"read_pj": float(fields["Dynamic read energy (nJ)"]) * 1e3,
            "write_pj": float(fields["Dynamic write energy (nJ)"]) * 1e3,
            "area_mm2": float(fields["Area (mm2)"]),
            "leakage_mw": float(fields["Standby leakage per bank(mW)"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tech", type=float, default=0.022, help="CACTI technology in microns (default 0.022)")
    args = parser.parse_args()
    import zigzag

    cacti_dir = Path(zigzag.__file__).parent / "cacti" / "cacti_master"
    for kib in CAPACITIES_KIB:
        for bits in PORT_BITS:
            r = run_cacti(cacti_dir, kib * 1024, bits, args.tech)
            print(f"    - {{bank_kib: {kib}, port_bits: {bits}, read: {r['read_pj']:.4g}, write: {r['write_pj']:.4g}}}"
                  f"   # area {r['area_mm2']:.4g} mm2, leakage {r['leakage_mw']:.4g} mW", flush=True)


if __name__ == "__main__":
    main()
