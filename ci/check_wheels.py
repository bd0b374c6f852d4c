"""Check the wheels `pants package ::` wrote against the pyproject.toml files they stand in for.

Each of the nine distributions must have a wheel whose requirements install the same third-party and sibling
distributions as its pyproject.toml's, counted through the sibling wheels (a CLI whose wheel lists numpy
directly, where its pyproject.toml gets numpy through stride-core, installs the same set). Versions are not
compared: Pants pins the lockfile's, pyproject.toml gives ranges.

    python ci/check_wheels.py dist/       # exit 1 and one line per difference
"""

from __future__ import annotations

import re
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

# The sibling script (ci/ is on sys.path when this one runs): the same name rules and pyproject list as the
# container renderer, so the two checks cannot disagree about what a distribution is.
from render_containers import normalize, pyproject_files, requirement_name

ROOT = Path(__file__).resolve().parents[1]


def wheel_requirements(wheel: Path) -> tuple[str, set[str]]:
    """The distribution name and the unconditional requirements (no extras) in a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        metadata_file = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_file).decode()
    name = re.search(r"^Name: (.+)$", metadata, re.MULTILINE)
    if not name:
        raise ValueError(f"{wheel}: METADATA has no Name")
    required = {
        requirement_name(line.split(":", 1)[1])
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    return normalize(name.group(1).strip()), required


def pyproject_requirements(root: Path) -> dict[str, set[str]]:
    found = {}
    for pyproject in pyproject_files(root):
        project = tomllib.loads(pyproject.read_text())["project"]
        found[normalize(project["name"])] = {requirement_name(r) for r in project.get("dependencies", [])}
    return found


def installed(graph: Mapping[str, Iterable[str]], name: str) -> set[str]:
    """Everything installing `name` brings in, following the first-party entries of the graph."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dependency in graph.get(todo.pop(), ()):
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


def differences(dist: Path, root: Path = ROOT) -> list[str]:
    wheels = dict(wheel_requirements(w) for w in sorted(dist.glob("*.whl")))
    projects = pyproject_requirements(root)
    problems = []
    for name in projects:
        if name not in wheels:
            problems.append(f"{dist}: no wheel of {name} (run `pants package ::`)")
            continue
        got, want = installed(wheels, name), installed(projects, name)
        if got != want:
            problems.append(
                f"{name}: the wheel installs {sorted(got - want)} beyond its pyproject.toml and lacks "
                f"{sorted(want - got)} (fix the BUILD dependencies in its src/BUILD or python_distribution)"
            )
    return problems


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    args = sys.argv[1:] if argv is None else argv
    dist = Path(args[0] if args else "dist")
    problems = differences(dist, root)
    for problem in problems:
        print(f"check_wheels: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_wheels: {len(list(dist.glob('*.whl')))} wheels install what their pyproject.toml does")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
