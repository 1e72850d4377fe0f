"""A package named `verifiers` (the unrelated PyPI project of that import name) installs beside
ours without either breaking: our two wheels, built offline, share no file with it (nor with
each other), install no top-level `verifiers`, and work unpacked into one site-packages."""

from __future__ import annotations

import csv
import importlib.util
import io
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from itertools import combinations
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STAND_IN = {
    "verifiers/__init__.py": "STAND_IN = True\n",
    "verifiers-0.1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: verifiers\nVersion: 0.1.0\n",
    "verifiers-0.1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    "verifiers-0.1.0.dist-info/top_level.txt": "verifiers\n",
}


def stand_in_wheel(folder: Path) -> Path:
    """A tiny wheel whose top-level package is `verifiers`, as the PyPI project's is."""
    path = folder / "verifiers-0.1.0-py3-none-any.whl"
    record = "".join(f"{name},,\n" for name in [*STAND_IN, "verifiers-0.1.0.dist-info/RECORD"])
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in {**STAND_IN, "verifiers-0.1.0.dist-info/RECORD": record}.items():
            wheel.writestr(name, text)
    return path


def our_wheels(folder: Path) -> list[Path]:
    """Both distributions' wheels, built offline from a copy of the sources (the checkout
    gets no build/ or egg-info from the test)."""
    if importlib.util.find_spec("wheel") is None or int(version("setuptools").split(".")[0]) < 68:
        pytest.skip("building wheels needs setuptools>=68 and wheel (the dev extras)")
    source = folder / "src"
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(REPO / "cascade", source / "cascade", ignore=junk)
    shutil.copytree(REPO / "verifiers", source / "verifiers", ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    proc = subprocess.run(
        [*command, "-w", str(folder / "wheels"), ".", "./verifiers"],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return sorted((folder / "wheels").glob("*.whl"))


def recorded_paths(wheel: Path) -> set[str]:
    """The files a wheel installs, from its RECORD."""
    with zipfile.ZipFile(wheel) as archive:
        (record,) = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        rows = csv.reader(io.StringIO(archive.read(record).decode("utf-8")))
        return {row[0] for row in rows if row}


def shared_paths(wheels: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} and {b}: {path}"
        for (a, one), (b, other) in combinations(wheels.items(), 2)
        for path in one & other
    )


def test_the_check_catches_a_shared_file():
    wheels = {"ours": {"verifiers/__init__.py", "ours.dist-info/RECORD"}, "theirs": {"verifiers/__init__.py"}}
    assert shared_paths(wheels) == ["ours and theirs: verifiers/__init__.py"]


def test_our_wheels_install_beside_a_package_named_verifiers(tmp_path):
    ours = our_wheels(tmp_path)
    assert [w.name.split("-")[0] for w in ours] == ["cascade_verifiers", "verified_cascade"]
    every = [*ours, stand_in_wheel(tmp_path)]
    wheels = {w.name: recorded_paths(w) for w in every}
    assert shared_paths(wheels) == []
    tops = {
        name: {p.split("/")[0] for p in paths if ".dist-info/" not in p}
        for name, paths in wheels.items()
        if not name.startswith("verifiers-")
    }  # each of ours installs its own import package and nothing else
    assert sorted(tops.values(), key=sorted) == [{"cascade"}, {"cascade_verifiers"}]

    site = tmp_path / "site"
    for wheel in every:  # unpacked into one folder, as pip installs them
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    check = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from importlib.metadata import distributions\n"
        "import cascade, cascade_verifiers.judge, verifiers\n"
        "assert verifiers.STAND_IN and cascade.__file__.startswith(sys.argv[1])\n"
        "points = {e.name: e for d in distributions(path=[sys.argv[1]]) for e in d.entry_points}\n"
        "assert points['hedging'].load().name == 'hedging'\n"
        "assert points['train-verifier'].load().__module__ == 'cascade_verifiers.train_command'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", check, str(site)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
