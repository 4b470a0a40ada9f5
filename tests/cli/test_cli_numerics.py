"""`hfp8sim numerics`: the accumulation study writes its table and figures, and its numbers behave."""

import csv

from hfp8sim.cli import main


def test_numerics_writes_table_and_figures(tmp_path, capsys):
    assert main(["numerics", "--out", str(tmp_path), "--size", "8", "--max-k", "4096"]) == 0
    with (tmp_path / "accumulation_error.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 6 * 7  # distributions x accumulators x orders x K in 64..4096
    for suffix in ("png", "svg"):
        assert (tmp_path / f"accumulation_error.{suffix}").stat().st_size > 10_000
    err = {(r["distribution"], r["acc_format"], r["order"], int(r["k"])): float(r["rel_error"]) for r in rows}
    for fmt in ("float16", "dlfloat16"):
        # a long chain of positive products swamps: its error grows with K ...
        assert err[("positive", fmt, "os chain", 4096)] > 10 * err[("positive", fmt, "os chain", 64)]
        # ... while folds of 8 rows keep it small, and more rows per fold cost accuracy
        assert err[("positive", fmt, "ws 8 rows", 4096)] < err[("positive", fmt, "ws 128 rows", 4096)]
        assert err[("positive", fmt, "ws 8 rows", 4096)] < 1e-3 < err[("positive", fmt, "os chain", 4096)]
        # at K = 64 a chunk of 64 and a 128-row fold are the same single chain
        assert err[("positive", fmt, "os chunk 64", 64)] == err[("positive", fmt, "os chain", 64)]
    # DLFloat16 has one mantissa bit fewer than IEEE half: about twice the error on short sums
    assert err[("normal", "dlfloat16", "ws 8 rows", 64)] > err[("normal", "float16", "ws 8 rows", 64)]
    assert "relative error at K=4096" in capsys.readouterr().out
