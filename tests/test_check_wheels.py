"""ci/check_wheels.py: the Pants-built wheels must install what the pyproject.toml files declare."""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import ModuleType

from conftest import load_script

REPO = Path(__file__).resolve().parents[1]


def _module() -> ModuleType:
    return load_script(REPO / "ci" / "check_wheels.py", "check_wheels")


def _pyproject(folder: Path, name: str, dependencies: list[str]) -> None:
    folder.mkdir(parents=True)
    listed = ", ".join(f'"{d}"' for d in dependencies)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = [{listed}]\n'
    )


def _wheel(dist: Path, name: str, requires: list[str]) -> None:
    dist.mkdir(exist_ok=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 0.1.0"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(dist / f"{name.replace('-', '_')}-0.1.0-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}-0.1.0.dist-info/METADATA", "\n".join(lines) + "\n")


def _repository(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    _pyproject(root / "schemas", "stride-contracts", ["pydantic>=2"])
    _pyproject(root / "packages" / "stride-core", "stride-core", ["stride-contracts", "numpy>=2", "h5netcdf"])
    _pyproject(root / "packages" / "stride-plot", "stride-plot", ["stride-core", "matplotlib"])
    return root


def test_wheels_that_install_the_same_closure_pass(tmp_path: Path) -> None:
    check = _module()
    root, dist = _repository(tmp_path), tmp_path / "dist"
    _wheel(dist, "stride-contracts", ["pydantic (==2.13.4)"])
    _wheel(dist, "stride-core", ["stride-contracts (==0.1.0)", "numpy (==2.4.6)", "h5netcdf (==1.8.2)"])
    # numpy listed directly, where the pyproject gets it through stride-core: the same installation.
    _wheel(dist, "stride_plot", ["stride-core (==0.1.0)", "matplotlib", "numpy", "pytest; extra == 'test'"])
    assert check.differences(dist, root) == []


def test_a_missing_runtime_dependency_a_stub_and_a_missing_wheel_are_reported(tmp_path: Path) -> None:
    check = _module()
    root, dist = _repository(tmp_path), tmp_path / "dist"
    _wheel(dist, "stride-contracts", ["pydantic"])
    # h5netcdf is opened by name (inference cannot see it); pandas-stubs is only for mypy.
    _wheel(dist, "stride-core", ["stride-contracts", "numpy", "pandas-stubs"])
    problems = check.differences(dist, root)
    assert any(
        p.startswith("stride-core:") and "['pandas-stubs']" in p and "['h5netcdf']" in p for p in problems
    )
    assert any("no wheel of stride-plot" in p for p in problems), problems
    assert check.main([str(dist)], root) == 1
