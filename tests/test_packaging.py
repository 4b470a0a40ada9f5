"""The wheel ships every subpackage and the shipped data (arch configs, tech files, workloads)."""

import tomllib

from setuptools import find_packages

from tests.conftest import PROJECT_ROOT


def test_pyproject_lists_every_subpackage_and_the_data_packages():
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    code = set(find_packages(str(PROJECT_ROOT), include=["hfp8sim*"]))
    assert listed == code | {"hfp8sim._data.arch_configs", "hfp8sim._data.workloads"}
    data = config["package-data"]
    assert "*/*.yaml" in data["hfp8sim._data.arch_configs"]  # formats/, tech/, array_sizes/
    assert "*.yaml" in data["hfp8sim._data.workloads"]
