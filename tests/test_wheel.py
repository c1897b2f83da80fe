"""The built wheel works outside the source tree: the grammar ships inside the package.

Builds the wheel without isolation (hatchling must be importable; it is installed if missing), installs
it with --no-deps into a fresh venv that sees the test environment's site-packages through a .pth file
(torch is not reinstalled; `--system-site-packages` would see the base interpreter's, not this venv's),
and runs the installed `nramdsl check` from a folder outside the repository.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pip(*args: str, cwd: Path = ROOT) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("hatchling") is None:
        _pip("install", "-q", "hatchling")
    dist = tmp_path_factory.mktemp("dist")
    _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), ".")
    wheel = next(dist.glob("nramdsl-*.whl"))
    env = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    # A plain path line in a .pth appends the directory to sys.path without running its own .pth files,
    # so the source tree's editable install stays invisible and the venv's copy of nramdsl is the one found.
    site = subprocess.run([str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    parent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "test-env.pth").write_text("\n".join(sorted(parent)) + "\n")
    subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    return env


def test_installed_cli_checks_the_paper_spec(venv: Path, tmp_path: Path) -> None:
    paper = ROOT / "examples" / "paper.nram"
    proc = subprocess.run([str(venv / "bin" / "nramdsl"), "check", str(paper)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{paper}: ok (1 gate sets, 1 machines, 12 gates)"


def test_installed_package_is_the_venv_copy_with_its_grammar(venv: Path, tmp_path: Path) -> None:
    code = "import nramdsl, nramdsl.lang.parse as p; print(nramdsl.__file__); print(p.grammar_path())"
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    package, grammar = (Path(line) for line in proc.stdout.splitlines())
    assert package.resolve().is_relative_to(venv.resolve()) and not package.resolve().is_relative_to(ROOT)
    assert grammar.resolve().is_relative_to(package.resolve().parent)
