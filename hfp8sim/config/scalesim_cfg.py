"""SCALE-Sim's INI config (``scale.cfg``) read as an arch config in SCALE-Sim mode (``mode: scalesim``).

What SCALE-Sim v3 reads from the file and what it becomes here:

* ``[general] run_name`` -> ``name``;
* ``[architecture_presets] ArrayHeight, ArrayWidth, Dataflow`` -> ``array.rows, cols, dataflow``;
* ``IfmapSramSzkB, FilterSramSzkB, OfmapSramSzkB`` -> ``scratchpads.{input,weight,output}.size_kib``.  SCALE-Sim
  stores one operand per 1-byte word (its word size is fixed), so "N kB" holds N*1024 operands; the scheme is
  ``hfp8``, whose operands are one byte, so the capacities mean the same.  In SCALE-Sim mode they only log
  traffic: they never reject a layer (nor a config);
* ``[run_presets] InterfaceBandwidth: CALC`` -> ideal memory (``dram.ideal``), SCALE-Sim's stall-free mode.
  ``USER`` (a finite bandwidth with SCALE-Sim's stall model), ``UseRamulatorTrace: True``, custom layouts
  and sparsity are refused with a line naming the key: hfp8sim does not reproduce them, and ignoring them
  would give numbers that look like SCALE-Sim's but are not;
* ``Bandwidth``, offsets, request buffers, bank counts: SCALE-Sim itself uses them only in the modes refused
  above (or only for addresses), so they are read and otherwise ignored.

SCALE-Sim has no clock (1 GHz here, so cycles and nanoseconds agree), no number formats and no energy model;
hfp8sim's defaults (``hfp8``, the 7 nm table) fill those in.
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_PRESETS = "architecture_presets"
_RUN = "run_presets"


class _Cfg:
    """The parsed file with located lookups (section.key in every message)."""

    def __init__(self, parser: configparser.ConfigParser, file: str):
        self.parser, self.file = parser, file

    def text(self, section: str, key: str, default: str | None = None) -> str:
        if self.parser.has_option(section, key):
            return self.parser.get(section, key).strip()
        if default is not None:
            return default
        where = f"[{section}]" if self.parser.has_section(section) else f"section [{section}] (missing)"
        raise ConfigError(f"required key {key} is missing in {where}", file=self.file, key_path=f"{section}.{key}")

    def positive_int(self, section: str, key: str) -> int:
        value = self.text(section, key)
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            raise ConfigError(f"must be a positive integer, got {value!r}", file=self.file,
                              key_path=f"{section}.{key}")
        return number

    def flag(self, section: str, key: str) -> bool:
        value = self.text(section, key, "false").lower()
        if value not in ("true", "false"):
            raise ConfigError(f"must be True or False, got {value!r}", file=self.file, key_path=f"{section}.{key}")
        return value == "true"

    def refuse(self, key_path: str, what: str) -> ConfigError:
        return ConfigError(f"{what} is not modelled: hfp8sim's SCALE-Sim mode reproduces CALC mode (ideal memory, "
                           "no stalls) only; for a finite bandwidth use an hfp8sim arch YAML in its own mode "
                           "(dram.bw_bytes_per_cycle)", file=self.file, key_path=key_path)


def _read(path: str | Path) -> _Cfg:
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise ConfigError("SCALE-Sim config not found" if not p.exists() else "not a file", file=file)
    # SCALE-Sim's own reader: ConfigParser with its defaults (``key: value`` or ``key = value``, keys case-
    # insensitive)
    parser = configparser.ConfigParser()
    try:
        parser.read_string(p.read_text(encoding="utf-8-sig"), source=file)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=file) from None
    except configparser.Error as exc:
        raise ConfigError(f"invalid SCALE-Sim config: {str(exc).splitlines()[0]}", file=file) from None
    return _Cfg(parser, file)


def _check_supported(cfg: _Cfg) -> None:
    mode = cfg.text(_RUN, "InterfaceBandwidth", "CALC")
    if mode == "USER":
        raise cfg.refuse(f"{_RUN}.InterfaceBandwidth", "USER (a finite DRAM bandwidth with SCALE-Sim's stall model)")
    if mode != "CALC":
        raise ConfigError(f"must be CALC or USER, got {mode!r}", file=cfg.file, key_path=f"{_RUN}.InterfaceBandwidth")
    if cfg.flag(_RUN, "UseRamulatorTrace"):
        raise cfg.refuse(f"{_RUN}.UseRamulatorTrace", "a Ramulator DRAM latency trace")
    for key in ("IfmapCustomLayout", "FilterCustomLayout"):
        if cfg.flag("layout", key):
            raise ConfigError("custom SRAM layouts (bank conflicts) are not modelled; set it to False",
                              file=cfg.file, key_path=f"layout.{key}")
    if cfg.flag("sparsity", "SparsitySupport"):
        raise ConfigError("sparse layers are not modelled (hfp8sim's layers are dense); set it to false",
                          file=cfg.file, key_path="sparsity.SparsitySupport")


def scalesim_cfg_to_arch_data(path: str | Path) -> dict[str, Any]:
    """The arch config (as the YAML data :func:`~hfp8sim.config.arch.parse_arch` takes) of a SCALE-Sim config."""
    cfg = _read(path)
    _check_supported(cfg)
    dataflow = cfg.text(_PRESETS, "Dataflow").lower()
    if dataflow not in ("os", "ws", "is"):
        raise ConfigError(f"must be os, ws or is, got {dataflow!r}", file=cfg.file, key_path=f"{_PRESETS}.Dataflow")
    rows, cols = cfg.positive_int(_PRESETS, "ArrayHeight"), cfg.positive_int(_PRESETS, "ArrayWidth")

    def pad(key: str) -> dict[str, Any]:
        # the ports never limit anything in SCALE-Sim mode (its CALC mode has no stalls); the array edge is
        # what a cycle moves, so it is the number written
        return {"size_kib": cfg.positive_int(_PRESETS, key), "read_bytes_per_cycle": max(rows, cols),
                "write_bytes_per_cycle": max(rows, cols)}

    return {
        "name": cfg.text("general", "run_name", Path(path).stem),
        "description": f"SCALE-Sim config {Path(path).name} (CALC mode)",
        "clock_ghz": 1.0,
        "scheme": "hfp8",
        "mode": "scalesim",
        "array": {"rows": rows, "cols": cols, "dataflow": dataflow,
                  "macs_per_pe_per_cycle": {8: 1, 16: 1, 32: 1}, "overlap_folds": False},
        "scratchpads": {"input": pad("IfmapSramSzkB"), "weight": pad("FilterSramSzkB"),
                        "output": pad("OfmapSramSzkB")},
        "dram": {"ideal": True},
        "interconnect": {"bw_bytes_per_cycle": max(rows, cols), "dma_engines": 1},
    }
