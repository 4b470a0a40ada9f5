"""The report gallery (``reports/``): figures and an index, made from result files alone.

:func:`write_gallery` reads what the producers left in the reports folder and never simulates:

- ``sweeps/array_size/`` (``hfp8sim sweep``): throughput, utilisation, FP8/FP16 speed-up, stalls/DRAM traffic
  and, when the rows have energy columns, energy figures; a roofline and per-layer cycles of each workload on
  the default-core point (128x128 ws hfp8) from its ``points/<id>.json``;
- ``numerics/accumulation_error.csv`` (``hfp8sim numerics``): the accumulation-error figure;
- ``fidelity/`` and ``chip/`` (made by other commands): their tables and figures, when present;
- ``training/`` and ``distributed/`` (``train-report``, ``distributed-report``): a link to their report, their
  figures and a line per CSV, when present.

``README.md`` shows every figure with one line on what it says; the numbers in those lines are computed from
the same files.  ``hfp8sim report`` runs the producers first (see ``hfp8sim.commands.report``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .plots import FORMATS, Figure, load_run, load_sweep, plot_run, plot_sweep

__all__ = ["ARRAY_SWEEP_DIR", "GalleryResult", "REFERENCE_POINT", "write_gallery"]

ARRAY_SWEEP_DIR = Path("sweeps") / "array_size"
FIGURES = "figures"
REFERENCE_POINT = {"rows": 128, "cols": 128, "dataflow": "ws", "scheme": "hfp8"}  # the default core
NUMERICS_CSV = Path("numerics") / "accumulation_error.csv"
EXTERNAL = (("fidelity", "Inference fidelity", "`hfp8sim fidelity`"),
            ("chip", "Reference-chip comparison", "`hfp8sim chip-report`"))
# long reports of other commands: linked with their figures, not inlined
LINKED = (("training", "Training on the bit-accurate datapath", "`hfp8sim train-report`"),
          ("distributed", "Data-parallel training across chips", "`hfp8sim distributed-report`"))
MAX_TABLE_ROWS = 40
CHANGES = "model_changes.md"  # inlined after the head of the index when present
TITLES = {
    "throughput": "Throughput (TMAC/s, TFLOPS) and inferences per second versus array size",
    "utilization": "Utilisation versus array size",
    "speedup_fp8_fp16": "FP8 (hfp8) speed-up over FP16 versus array size",
    "stalls_dram": "Stall cycles and DRAM traffic versus array size",
    "energy_breakdown": "Energy per inference by component",
    "energy_ratio_fp8_fp16": "FP8/FP16 energy ratio versus array size",
}


@dataclasses.dataclass
class GalleryResult:
    readme: Path
    figures: list[Figure]
    notes: list[str]
    sections: list[str]


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _image(figure: Figure, root: Path) -> str:
    png = next((p for p in figure.paths if p.suffix == ".png"), figure.paths[0])
    others = " ".join(f"[{p.suffix[1:]}]({_rel(p, root)})" for p in figure.paths if p != png)
    return f"![{figure.name}]({_rel(png, root)})\n\n{figure.caption} {others}".rstrip()


# ------------------------------------------------------------------------------------------ sections


def _sweep_section(root: Path, formats: Sequence[str], figures: list[Figure], notes: list[str]) -> list[str]:
    folder = root / ARRAY_SWEEP_DIR
    if not (folder / "points.csv").is_file():
        notes.append(f"no array-size sweep in {folder} (run `hfp8sim report` without --figures-only)")
        return []
    table = load_sweep(folder)
    out = folder / FIGURES
    for old in out.glob("*") if out.is_dir() else ():
        if old.is_file() and old.suffix[1:] in ("png", "svg", "pdf"):
            old.unlink()  # figures of an earlier gallery that may no longer apply
    report = plot_sweep(table, out, formats=formats)
    ok = table.ok
    lines = ["## Array-size sweep", ""]
    manifest = json.loads((folder / "sweep.json").read_text()) if (folder / "sweep.json").is_file() else {}
    if ok:
        sizes = sorted({(r["rows"], r["cols"]) for r in ok})
        first = _point_payload(folder, ok[0])
        config = (first or {}).get("config", {})
        pads = config.get("scratchpads", {})
        dram = config.get("dram", {})
        memory = ""
        if pads and dram:
            kib = sorted({pads[p]["size_kib"] for p in pads})
            bw = dram.get("bw_gb_per_s") or (dram.get("bw_bytes_per_cycle", 0) * config.get("clock_ghz", 0))
            memory = (f" The rest of the core is held fixed: {config.get('clock_ghz')} GHz, scratchpads of "
                      f"{'/'.join(f'{k:g}' for k in kib)} KiB, DRAM {bw:g} GB/s.")
        lines += [
            f"`{_rel(folder, root)}/points.csv` ({len(table.rows)} points, {len(ok)} ok): "
            f"{', '.join(sorted({str(r['workload']) for r in ok}))} on "
            f"{', '.join(f'{r}x{c}' for r, c in sizes)} arrays, dataflows "
            f"{', '.join(sorted({str(r['dataflow']) for r in ok}))}, schemes "
            f"{', '.join(sorted({str(r['scheme']) for r in ok}))}, from "
            f"`{', '.join(Path(a).name for a in manifest.get('arch_files', [])) or '?'}`.{memory} "
            "One JSON per point (summary, every layer, resolved config) is in `points/`.", ""]
    for figure in report.figures:
        figures.append(figure)
        lines += [f"### {TITLES.get(figure.name, figure.name.replace('_', ' '))}", "", _image(figure, root), ""]
    notes += report.notes
    lines += _reference_runs(root, folder, table, formats, figures, notes)
    return lines


def _point_payload(folder: Path, row: dict[str, Any]) -> dict[str, Any] | None:
    path = folder / "points" / f"{row['point_id']}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _reference_runs(root: Path, folder: Path, table, formats, figures: list[Figure], notes: list[str]) -> list[str]:
    chosen = [r for r in table.ok if all(r.get(k) == v for k, v in REFERENCE_POINT.items())]
    if not chosen:
        notes.append("no point of the sweep is the default core (128x128 ws hfp8): no rooflines")
        return []
    lines = ["## Rooflines and per-layer cycles on the default core (128x128 ws, hfp8)", "",
             "Each marker is one GEMM layer: its arithmetic intensity (MACs per DRAM byte moved) against the MAC/s "
             "it attained, under the compute roof (peak MACs per cycle x clock) and the DRAM bandwidth roof.", ""]
    out = folder / FIGURES
    for row in chosen:
        path = folder / "points" / f"{row['point_id']}.json"
        if not path.is_file():
            notes.append(f"{path}: missing, no roofline for {row['workload']}")
            continue
        run = load_run(path)
        report = plot_run(run, out, prefix=f"{row['workload']}_", formats=formats)
        lines += [f"### {row['workload']}", ""]
        for figure in report.figures:
            figures.append(figure)
            lines += [_image(figure, root), ""]
        notes += report.notes
    return lines


def _numerics_section(root: Path, figures: list[Figure], notes: list[str]) -> list[str]:
    from .numerics import plot_accumulation_error

    path = root / NUMERICS_CSV
    if not path.is_file():
        notes.append(f"no numerics study in {path} (run `hfp8sim numerics`)")
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    stem = path.with_suffix("")
    paths = plot_accumulation_error(path, stem)
    err = {(r["distribution"], r["acc_format"], r["order"], int(r["k"])): float(r["rel_error"]) for r in rows}
    k_max = max(int(r["k"]) for r in rows)
    k_min = min(int(r["k"]) for r in rows)
    parts = []
    for fmt in sorted({r["acc_format"] for r in rows}):
        chain = err.get(("positive", fmt, "os chain", k_max))
        chunk = err.get(("positive", fmt, "os chunk 64", k_max))
        folds = {o: v for (d, f, o, k), v in err.items() if d == "positive" and f == fmt and k == k_max
                 and o.startswith("ws")}
        text = f"{fmt}: os chain {chain:.2g}" if chain is not None else f"{fmt}:"
        if chunk is not None:
            text += f", chunks of 64 {chunk:.2g}"
        if folds:
            best = min(folds, key=folds.get)
            worst = max(folds, key=folds.get)
            text += f", {best} {folds[best]:.2g} to {worst} {folds[worst]:.2g}"
        parts.append(text)
    growth = [err[("positive", f, "os chain", k_max)] / err[("positive", f, "os chain", k_min)]
              for f in sorted({r["acc_format"] for r in rows}) if ("positive", f, "os chain", k_min) in err
              and err[("positive", f, "os chain", k_min)] > 0]
    caption = (f"Relative error of a bit-accurate FP8 GEMM against float64 at K={k_max}, all-positive operands: "
               + "; ".join(parts) + "."
               + (f" A long chain's error grows {min(growth):.0f}-{max(growth):.0f}x from K={k_min} to K={k_max} "
                  "(swamping); chunks and folds keep it flat." if growth else ""))
    figure = Figure("accumulation_error", paths, caption)
    figures.append(figure)
    return ["## Numerics of accumulation (`hfp8sim numerics`)", "",
            f"`{_rel(path, root)}`: {len(rows)} rows (distribution x accumulator x order of additions x K, "
            f"K = {k_min}..{k_max}).", "", _image(figure, root), ""]


def _format_cell(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text.replace("|", "\\|")
    if math.isnan(value) or math.isinf(value) or text.strip().lstrip("-").isdigit():
        return text
    return f"{value:.4g}"


def _csv_table(path: Path) -> tuple[list[str], int]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return [], 0
    header, body = rows[0], rows[1:]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in body[:MAX_TABLE_ROWS]:
        lines.append("| " + " | ".join(_format_cell(c) for c in row) + " |")
    return lines, len(body)


_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def _rebase_markdown(text: str, folder: str) -> str:
    """A Markdown file of ``folder`` shown inside the index: headings two levels down, relative links rebased."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            line = "##" + line
        out.append(_LINK.sub(lambda m: m.group(1) + (m.group(2) if re.match(r"^([a-z]+:|/|#)", m.group(2))
                                                     else f"{folder}/{m.group(2)}") + m.group(3), line))
    return "\n".join(out).strip()


def _csv_summary(path: Path, root: Path) -> tuple[str, list[str], int]:
    """One line on a CSV (rows, columns, the range of any ratio column) and its table."""
    table, count = _csv_table(path)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0]) if rows else []
    line = f"`{_rel(path, root)}`: {count} rows x {len(columns)} columns"
    for column in columns:
        if column.lower().startswith("ratio"):
            values = []
            for row in rows:
                try:
                    values.append(float(row[column]))
                except (TypeError, ValueError):
                    pass
            if values:
                line += f"; {column} {min(values):.2f} to {max(values):.2f}"
    return line + ".", table, count


def _external_section(root: Path, name: str, title: str, what: str, notes: list[str]) -> list[str]:
    """Another command's results: its own Markdown report inlined (``<name>.md``), else its tables and
    figures; in both cases a line per CSV with its size (and the range of its ratio columns)."""
    folder = root / name
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    if not files:
        notes.append(f"{title}: {folder} has no files yet ({what} writes them); section left out")
        return []
    lines = [f"## {title}", "", f"Written by {what} into `{name}/`; shown here as found.", ""]
    report = folder / f"{name}.md"
    inlined = ""
    if report.is_file():
        inlined = report.read_text(encoding="utf-8")
        lines += [_rebase_markdown(inlined, name), ""]
    for path in files:
        rel = _rel(path, root)
        if path.suffix == ".csv":
            summary = _readable_csv_summary(path, root, notes)
            if summary is None:
                continue
            line, table, count = summary
            if inlined:
                lines += [f"- {line}"]
            else:
                shown = f" (first {MAX_TABLE_ROWS} rows shown)" if count > MAX_TABLE_ROWS else ""
                lines += [line + shown, "", *table, ""]
        elif path.suffix == ".png" and path.name not in inlined:
            lines += ["", f"![{path.stem}]({rel})", ""]
        elif path.suffix in (".md", ".json", ".txt", ".svg") and path != report:
            lines += [f"- [`{rel}`]({rel})"]
    lines.append("")
    return lines


def _readable_csv_summary(path: Path, root: Path, notes: list[str]):
    """:func:`_csv_summary` of ``path``, or None with a note when the file cannot be read."""
    try:
        return _csv_summary(path, root)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        notes.append(f"{_rel(path, root)}: unreadable ({exc})")
        return None


def _linked_section(root: Path, name: str, title: str, what: str, notes: list[str]) -> list[str]:
    """Another command's long report: a link to its Markdown, its figures, and a line per CSV of its folder
    (sub-folders such as the training study's per-run records are left to the report)."""
    folder = root / name
    report = folder / f"{name}.md"
    if not report.is_file():
        notes.append(f"{title}: {report} not found yet ({what} writes it); section left out")
        return []
    heading = next((line.lstrip("# ").strip() for line in report.read_text(encoding="utf-8").splitlines()
                    if line.startswith("# ")), title)
    lines = [f"## {title}", "", f"Written by {what} into `{name}/`: [{heading}]({_rel(report, root)}).", ""]
    tables = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        rel = _rel(path, root)
        if path.suffix == ".png":
            lines += [f"![{path.stem}]({rel})", ""]
        elif path.suffix == ".csv":
            summary = _readable_csv_summary(path, root, notes)
            if summary is not None:
                tables.append(f"- {summary[0]}")
    return lines + tables + [""]


# ------------------------------------------------------------------------------------------ the index


def write_gallery(root: str | Path = "reports", *, formats: Sequence[str] = FORMATS,
                  quick: bool = False) -> GalleryResult:
    """Make every figure that the files in ``root`` allow and write ``root/README.md``."""
    from .. import __version__

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    notes: list[str] = []
    sections = []
    body: list[str] = []
    for name, maker in (("sweep", lambda: _sweep_section(root, formats, figures, notes)),
                        ("numerics", lambda: _numerics_section(root, figures, notes))):
        lines = maker()
        if lines:
            sections.append(name)
            body += lines
    for name, title, what in EXTERNAL:
        lines = _external_section(root, name, title, what, notes)
        if lines:
            sections.append(name)
            body += lines
    for name, title, what in LINKED:
        lines = _linked_section(root, name, title, what, notes)
        if lines:
            sections.append(name)
            body += lines
    head = [
        "# reports",
        "",
        "Generated tables and figures.  `hfp8sim report` regenerates this folder: it runs the array-size sweep "
        "(`hfp8sim sweep`) and the numerics study (`hfp8sim numerics`), draws every figure from their result "
        "files (`hfp8sim plot` does the same for any sweep or run folder), and writes this index, whose "
        "one-line summaries are computed from the same files.  `hfp8sim report --quick` makes a smaller "
        "gallery; `hfp8sim report --figures-only` redraws from the files already here.",
        "",
        f"Made by hfp8sim {__version__}{' (quick gallery: fewer points)' if quick else ''}.",
        "",
    ]
    if notes:
        head += ["Not included:", ""] + [f"- {n}" for n in notes] + [""]
    changes = root / CHANGES
    if changes.is_file():  # hand-written: what a change of the model did to the figures, before and after
        head += [changes.read_text().rstrip(), ""]
    readme = root / "README.md"
    readme.write_text("\n".join(head + body).rstrip() + "\n")
    return GalleryResult(readme, figures, notes, sections)
