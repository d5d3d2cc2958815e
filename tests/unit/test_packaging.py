"""setup.cfg against the tree: every package is shipped (the list is written
out, because oci-schemas/ is mapped in as pyrunc.oci_schemas), every data file
exists, and the Python versions claimed are the ones tested."""

from __future__ import annotations

import configparser
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(os.path.join(REPO, "setup.cfg"))
    return config


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.strip().splitlines() if line.strip()]


def test_setup_cfg_lists_every_package_of_the_tree():
    listed = set(_lines(_setup_cfg()["options"]["packages"]))
    found = {os.path.relpath(root, REPO).replace(os.sep, ".")
             for root, _, files in os.walk(os.path.join(REPO, "pyrunc")) if "__init__.py" in files}
    assert listed == found | {"pyrunc.oci_schemas"}


def test_schemas_are_package_data_from_the_one_top_level_copy():
    config = _setup_cfg()
    assert _lines(config["options"]["package_dir"]) == ["pyrunc.oci_schemas = oci-schemas"]
    assert config["options.package_data"]["pyrunc.oci_schemas"].strip() == "*.json"
    assert glob.glob(os.path.join(REPO, "oci-schemas", "*.json"))
    assert not os.path.exists(os.path.join(REPO, "pyrunc", "oci_schemas"))


def test_every_data_file_exists():
    for target, sources in _setup_cfg()["options.data_files"].items():
        for pattern in _lines(sources):
            assert glob.glob(os.path.join(REPO, pattern)), f"{target}: {pattern} matches nothing"


def test_the_command_is_a_data_file_not_a_pip_script():
    # pip rewrites a script's "#!python -I -S" to "#!/venv/bin/python", dropping -I.
    config = _setup_cfg()
    assert "scripts" not in config["options"]
    assert "console_scripts" not in config.sections() and "options.entry_points" not in config.sections()
    assert _lines(config["options.data_files"]["bin"]) == ["bin/pyrunc"]
    with open(os.path.join(REPO, "bin", "pyrunc"), "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert os.access(os.path.join(REPO, "bin", "pyrunc"), os.X_OK)


def test_python_versions_claimed_match_python_requires_and_the_makefile():
    config = _setup_cfg()
    claimed = sorted(re.findall(r"Programming Language :: Python :: (3\.\d+)$",
                                config["metadata"]["classifiers"], re.M), key=lambda v: int(v.split(".")[1]))
    assert claimed[0] == config["options"]["python_requires"].strip().lstrip(">=")
    with open(os.path.join(REPO, "Makefile")) as f:
        makefile = f.read()
    tested = re.search(r"^PYTHON_VERSIONS \?= (.*)$", makefile, re.M).group(1).split()
    assert sorted(set(tested) | {"3.11"}) == claimed


def test_license_file_is_the_license_named_in_the_metadata():
    assert _setup_cfg()["metadata"]["license"].strip() == "Apache-2.0"
    with open(os.path.join(REPO, "LICENSE")) as f:
        head = f.read(300)
    assert "Apache License" in head and "Version 2.0" in head
