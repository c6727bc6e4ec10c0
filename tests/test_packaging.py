"""The sdist and the wheel hold what they should, and no tool's leftovers.

The project is copied (its source, not .git or virtual environments), the
caches a test run and the tools leave behind are planted in the copy, and
`python -m build` (no isolation: hatchling comes with the dev extra, so no
network) builds both from it; their file lists are then checked."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "_bento_track_pytestplugin.py"
# What a test run, the tools and a build leave in a checkout.
CACHES = [
    ".hypothesis/examples/ab/cd",
    ".mypy_cache/3.11/x.json",
    ".ruff_cache/0.5/x",
    ".pytest_cache/v/cache/lastfailed",
    "build/lib/x.py",
    "dist/old-0.0.0.tar.gz",
    ".venv-3.10/pyvenv.cfg",
    "bento_track/__pycache__/client.cpython-311.pyc",
    "tests/__pycache__/conftest.cpython-311-pytest-8.pyc",
    ".coverage",
]
LEFTOVER = re.compile(
    r"(^|/)(\.hypothesis|\.mypy_cache|\.ruff_cache|\.pytest_cache|__pycache__|"
    r"\.venv[^/]*|build|dist|\.coverage)(/|$)|\.pyc$"
)


def _source_copy(target: Path) -> Path:
    skip = shutil.ignore_patterns(
        ".git", ".venv*", "__pycache__", ".*_cache", ".hypothesis", "build", "dist"
    )
    shutil.copytree(ROOT, target, ignore=skip)
    for name in CACHES:
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("left behind\n")
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the sdist, the wheel), built once from a copy with caches planted."""
    base = tmp_path_factory.mktemp("packaging")
    project = _source_copy(base / "project")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(base / "out"),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [sdist] = (base / "out").glob("*.tar.gz")
    [wheel] = (base / "out").glob("*.whl")
    return sdist, wheel


def _tracked(*roots: str) -> set[str]:
    """The files git tracks under `roots` (the checkout's own list)."""
    done = subprocess.run(
        ["git", "ls-files", "-z", "--", *roots],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {name for name in done.stdout.split("\0") if name}


def _tested_versions() -> list[str]:
    """The Python versions `.ci/run` runs the suite on."""
    match = re.search(r'^VERSIONS="([^"]+)"', (ROOT / ".ci/run").read_text(), re.M)
    assert match, ".ci/run names no VERSIONS"
    return match[1].split()


def test_the_wheel_holds_the_package_the_plugin_and_the_license(
    built: tuple[Path, Path],
) -> None:
    _, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
        metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        entry_points = archive.read(f"{info}/entry_points.txt").decode()

    assert not [n for n in names if LEFTOVER.search(n)]
    assert {n.split("/")[0] for n in names} == {"bento_track", PLUGIN, info}
    package = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "bento_track").rglob("*")
        if p.is_file() and not LEFTOVER.search(p.relative_to(ROOT).as_posix())
    }
    assert package <= names, sorted(package - names)
    assert "bento_track/py.typed" in names
    assert f"{info}/licenses/LICENSE" in names
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.10"
    assert "[pytest11]\nbento_track = _bento_track_pytestplugin" in entry_points
    assert "bento-track = bento_track.cli:main" in entry_points
    classified = sorted(
        c.rsplit(" :: ", 1)[1]
        for c in metadata.get_all("Classifier") or []
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    assert classified == _tested_versions()


def test_the_sdist_holds_the_source_and_no_caches(built: tuple[Path, Path]) -> None:
    sdist, _ = built
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}

    assert not [n for n in names if LEFTOVER.search(n)]
    for name in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"):
        assert name in names, name
    assert PLUGIN in names
    shipped = _tracked(
        "bento_track", "tests", "integrations", "examples", "benchmarks", "docs"
    )
    assert shipped and shipped <= names, sorted(shipped - names)


def test_the_dev_extra_holds_the_benchmark_peers() -> None:
    """`dev` is everything the suite needs, the benchmark smoke tests
    included: every requirement of `bench` is in `dev` too."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pytest and hatchling bring tomli on 3.10
        import tomli as tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(extras["bench"]) <= set(extras["dev"])
    assert {"build>=1.2", "hatchling>=1.25"} <= set(extras["dev"])
