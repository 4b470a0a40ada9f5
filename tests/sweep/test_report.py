"""`hfp8sim report`: the gallery from a (small) sweep and numerics study, and an index computed from them."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt

from hfp8sim.cli import main
from hfp8sim.commands import report as report_command
from hfp8sim.reports.gallery import write_gallery

from .conftest import read_rows


def test_report_quick_gallery(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report_command, "WORKLOADS", ("tiny_cnn", "tiny_mlp"))
    root = tmp_path / "reports"
    (root / "fidelity").mkdir(parents=True)
    (root / "fidelity" / "fidelity.csv").write_text("network,scheme,top1\nminilm,hfp8,0.91234567\nminilm,fp16,0.9301\n")
    (root / "chip").mkdir()  # a report with its own Markdown page: inlined, links rebased
    (root / "chip" / "chip.md").write_text("# Chip versus published\n\n![chip figure](c.png)\n\n| a | b |\n|---|---|\n")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [1, 3, 2])
    fig.savefig(root / "chip" / "c.png", dpi=100)
    plt.close(fig)
    (root / "chip" / "vs_published.csv").write_text("quantity,ratio_sim_to_pub\npeak,1.02\nefficiency,0.8\n")
    assert main(["report", "--out", str(root), "--quick", "--jobs", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"time: sweep [\d.]+ s, numerics [\d.]+ s, figures [\d.]+ s, total [\d.]+ s", printed)
    sweep_dir = root / "sweeps" / "array_size"
    rows = read_rows(sweep_dir)
    assert len(rows) == 2 * 3 * 2 and all(r["status"] == "ok" for r in rows)
    readme = (root / "README.md").read_text()
    # every image the index shows exists
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(images) >= 4 + 2 * 2 + 1
    for image in images:
        assert (root / image).stat().st_size > 5_000, image
    assert "(quick gallery: fewer points)" in readme
    # one-line summaries carry the numbers of the files
    best = max((r for r in rows if r["workload"] == "tiny_mlp" and r["scheme"] == "hfp8"),
               key=lambda r: float(r["tera_macs_per_second"]))
    assert f"hfp8 {float(best['tera_macs_per_second']):.2f} TMAC/s" in readme
    assert "## Rooflines and per-layer cycles on the default core (128x128 ws, hfp8)" in readme
    assert "Roofline of tiny_cnn 128x128 ws hfp8: compute roof 52.4 TMAC/s, DRAM 204.8 GB/s, ridge 256 MAC/B" \
        in readme
    assert "K = 64..4096" in readme and "numerics/accumulation_error.png" in readme
    assert "| minilm | hfp8 | 0.9123 |" in readme  # other people's table, included
    assert "### Chip versus published" in readme and "![chip figure](chip/c.png)" in readme
    assert "- `chip/vs_published.csv`: 2 rows x 2 columns; ratio_sim_to_pub 0.80 to 1.02." in readme
    # the per-point JSONs are ignored by git except the default-core points the rooflines read
    ignore = (sweep_dir / "points" / ".gitignore").read_text().splitlines()
    reference = [r["point_id"] for r in rows if (r["rows"], r["dataflow"], r["scheme"]) == ("128", "ws", "hfp8")]
    assert "*.json" in ignore and sorted(f"!{i}.json" for i in reference) == [x for x in ignore if x.startswith("!")]
    # regenerable: redrawing from the files gives the same index
    assert main(["report", "--out", str(root), "--figures-only"]) == 0
    assert (root / "README.md").read_text() == readme


def test_gallery_of_an_empty_folder_says_what_is_missing(tmp_path):
    result = write_gallery(tmp_path)
    assert result.figures == [] and result.sections == []
    text = result.readme.read_text()
    for missing in ("no array-size sweep in", "no numerics study in",
                    "Inference fidelity: ", "Reference-chip comparison: ", "Training on the bit-accurate datapath: ",
                    "Data-parallel training across chips: "):
        assert missing in text


def test_long_reports_are_linked_with_their_figures_not_inlined(tmp_path):
    folder = tmp_path / "distributed"
    (folder / "runs").mkdir(parents=True)
    (folder / "distributed.md").write_text("# The claim, measured\n\nA long table that stays in its own file.\n")
    (folder / "distributed.png").write_bytes(b"\x89PNG")
    (folder / "distributed.csv").write_text("chips,step_ms\n2,1.5\n8,2.5\n")
    (folder / "runs" / "one.json").write_text("{}")
    result = write_gallery(tmp_path)
    text = result.readme.read_text()
    assert "distributed" in result.sections and "training" not in result.sections
    assert "[The claim, measured](distributed/distributed.md)" in text
    assert "![distributed](distributed/distributed.png)" in text
    assert "`distributed/distributed.csv`: 2 rows" in text
    assert "A long table" not in text and "runs/one.json" not in text


def test_the_model_changes_note_is_inlined_once_after_the_head(tmp_path):
    (tmp_path / "model_changes.md").write_text("## What changed\n\nResNet-50 HFP8: 845,003 -> 588,023 cycles.\n")
    text = write_gallery(tmp_path).readme.read_text()
    assert text.count("## What changed") == 1
    assert text.index("Made by hfp8sim") < text.index("## What changed")
    assert "845,003 -> 588,023 cycles" in text
