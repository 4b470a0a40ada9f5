"""Custom formats and schemes from YAML, and located errors for bad files."""

import textwrap

import pytest

from hfp8sim.config import load_format_library
from hfp8sim.errors import ConfigError
from hfp8sim.formats import decode, encode, get_format, get_scheme


def write(tmp_path, text, name="lib.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_formats_and_schemes_from_yaml(tmp_path):
    path = write(tmp_path, """
        formats:
          yaml_e3m4_fn:
            exp_bits: 3
            man_bits: 4
            bias: 3
            nan: fn
          yaml_e4m3_b10_flush:
            exp_bits: 4
            man_bits: 3
            bias: 10
            subnormals: false
            nan: fnuz
        schemes:
          yaml_scheme:
            forward: yaml_e4m3_b10_flush
            backward: float8_e5m2
            accumulate: dlfloat16
    """)
    formats, schemes = load_format_library(path)
    assert [f.name for f in formats] == ["yaml_e3m4_fn", "yaml_e4m3_b10_flush"]
    spec = get_format("yaml_e4m3_b10_flush")
    assert (spec.bias, spec.subnormals, spec.negative_zero, float(spec.max_value)) == (10, False, False, 60.0)
    assert get_scheme("yaml_scheme").forward is spec
    assert decode(encode([1e6, 2**-12], spec), spec).tolist() == [60.0, 0.0]  # saturate; flush below 2**-9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("formats:\n  f:\n    exp_bits: 4\n    man_bits: 3\n    bias: 7.5\n",
         r"lib.yaml: formats.f.bias: input should be a valid integer"),
        ("formats:\n  f:\n    exp_bits: 4\n    man_bit: 3\n    bias: 7\n",
         r"lib.yaml: 2 problems: formats.f.man_bits: required key is missing; formats.f.man_bit: unknown key"),
        ("formats:\n  f:\n    exp_bits: 0\n    man_bits: 3\n    bias: 7\n",
         r"lib.yaml: formats.f: format 'f': exp_bits must be 1..8"),
        ("formats:\n  f:\n    exp_bits: 9\n    man_bits: 9\n    bias: 7\n",
         r"lib.yaml: formats.f: format 'f': exp_bits must be 1..8"),
        ("schemes:\n  s:\n    forward: float8_e4m3b11fnz\n    backward: float8_e5m2\n    accumulate: dlfloat16\n",
         r"lib.yaml: schemes.s: unknown format 'float8_e4m3b11fnz' \(did you mean 'float8_e4m3b11fnuz'\?\)"),
        ("schemes: [1, 2]\n", r"lib.yaml: schemes: input should be a valid dictionary"),
        ("formats:\n  f: {exp_bits: 4\n", r"lib.yaml: line \d+, column \d+: invalid YAML"),
        ("formats:\n  f: 1\n  f: 2\n", r"lib.yaml: line 3, column 3: invalid YAML: duplicate key 'f'"),
    ],
)
def test_bad_library_files_give_located_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_format_library(write(tmp_path, text))


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: format library file not found; shipped format libraries: "
                                          r"example_formats$"):
        load_format_library(tmp_path / "nope.yaml")


def test_shipped_format_library_by_name():
    formats, schemes = load_format_library("example_formats")
    assert formats[0].name == "e4m3b11_ieee" and schemes[0].forward is formats[0]


def test_shipped_format_library_loads(project_root):
    formats, schemes = load_format_library(project_root / "arch_configs" / "formats" / "example_formats.yaml")
    assert float(formats[0].max_value) == 15.0  # bias 11 with the top exponent reserved
    assert schemes[0].forward is formats[0]
