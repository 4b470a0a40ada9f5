"""The CLI: the formats table, `run` on the embedded default, and one-line errors with exit code 2."""

import subprocess
import sys

from hfp8sim.cli import main


def test_formats_table_prints_every_format_and_scheme(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    assert "float8_e4m3b11fnuz  8     4  3   11    30" in out
    assert "dlfloat16" in out and "none (flush)" in out
    assert "hfp8       float8_e4m3b11fnuz / float8_e5m2 / dlfloat16" in out


def test_unknown_format_is_one_line_and_exit_2(capsys):
    assert main(["formats", "float8_e4m3b12fnuzz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hfp8sim: error: unknown format 'float8_e4m3b12fnuzz'")


def test_bad_library_file_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("formats:\n  f:\n    exp_bits: 4\n    man_bits: 3\n    bias: x\n")
    assert main(["formats", "--file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.yaml: formats.f.bias: input should be a valid integer" in err


def test_console_script_usage_error_has_no_traceback():
    result = subprocess.run([sys.executable, "-m", "hfp8sim.cli", "formats", "--bogus"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "unrecognized arguments: --bogus" in result.stderr
