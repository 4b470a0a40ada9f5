"""The wheel ships every subpackage and the shipped data (arch configs, tech files, workloads), and builds
without setuptools warnings about folders it would stop installing."""

import tomllib

from setuptools import find_packages

from tests.conftest import PROJECT_ROOT


def _setuptools_config() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _data_folders() -> set[str]:
    """Every folder of shipped YAML under arch_configs/ and workloads/, as the package it installs as."""
    found = set()
    for root in ("arch_configs", "workloads"):
        for folder in [PROJECT_ROOT / root, *sorted(p for p in (PROJECT_ROOT / root).rglob("*") if p.is_dir())]:
            if any(folder.glob("*.yaml")):
                relative = folder.relative_to(PROJECT_ROOT).parts
                found.add(".".join(("hfp8sim", "_data", *relative)))
    return found


def test_pyproject_lists_every_subpackage_and_every_data_folder():
    config = _setuptools_config()
    listed = set(config["packages"])
    code = set(find_packages(str(PROJECT_ROOT), include=["hfp8sim*"]))
    data_folders = _data_folders()
    assert {"hfp8sim._data.arch_configs.tech", "hfp8sim._data.arch_configs.array_sizes"} <= data_folders
    assert listed == code | data_folders
    for package in data_folders:
        assert "*.yaml" in config["package-data"][package], package


def test_license_is_an_spdx_expression():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
