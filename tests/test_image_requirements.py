"""The per-image pinned subsets of the lock file, requirements/images/*.txt (issue 12).

Each image installs exactly its subset with `pip --no-deps` (containers/*/Dockerfile), so a subset must pin
what the tests run with (requirements/lock.txt) and hold every dependency its CLI declares, directly or
through its requirements' metadata, and nothing else. ci/render_containers.py writes the subsets;
this test checks those properties on its own: from the pyproject files, the lock and the metadata of the
installed distributions (the environment `make env` builds from the lock), not through the renderer.
That the committed files are the rendered ones is tests/test_repo_layout.py's test_containers_match_template.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
SUBSETS = ROOT / "requirements" / "images"
# pip freeze (make lock) leaves these out; a subset pins them at the test environment's version.
FREEZE_OMITS = {"pip", "setuptools", "wheel"}


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not name.startswith("#"):
            found[canonicalize_name(name)] = version.strip()
    return found


def projects() -> dict[str, list[str]]:
    """Every first-party distribution's declared dependencies, by name."""
    files = [ROOT / "schemas" / "pyproject.toml", *sorted((ROOT / "packages").glob("*/pyproject.toml"))]
    found: dict[str, list[str]] = {}
    for path in files:
        project = tomllib.loads(path.read_text())["project"]
        found[canonicalize_name(project["name"])] = project.get("dependencies", [])
    return found


def declared_roots(first_party: list[str]) -> list[str]:
    """The third-party requirements of these STRIDE distributions and of the STRIDE ones they need."""
    known, roots, todo, seen = projects(), [], list(first_party), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in known[name]:
            dependency = canonicalize_name(Requirement(text).name)
            if dependency in known:
                todo.append(dependency)
            else:
                roots.append(text)
    return roots


def subset_problems(subset: dict[str, str], roots: list[str], lock: dict[str, str]) -> list[str]:
    """What is wrong with a subset: a pin the lock disagrees with, a dependency it misses or pins below
    a declared bound, a package nothing requires."""
    problems = []
    for name, version in sorted(subset.items()):
        expected = lock.get(name)
        if expected is None and name in FREEZE_OMITS:
            expected = metadata.version(name)
        if version != expected:
            problems.append(f"{name}=={version}: requirements/lock.txt pins {expected}")
    reached: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(Requirement(text), "the pyproject files") for text in roots]
    while todo:
        requirement, by = todo.pop()
        name = canonicalize_name(requirement.name)
        if name not in subset:
            problems.append(f"misses {name}: {by} requires {requirement}")
            continue
        reached.add(name)
        if not requirement.specifier.contains(subset[name], prereleases=True):
            problems.append(f"{name}=={subset[name]} breaks {by}'s requirement {requirement}")
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for text in metadata.requires(name) or []:
            dependency = Requirement(text)
            extras = {"", *requirement.extras}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in extras):
                todo.append((dependency, f"{name} {subset[name]}"))
    problems += [
        f"{name}: not needed (nothing in the closure requires it)" for name in sorted(set(subset) - reached)
    ]
    return problems


def clis() -> list[str]:
    return sorted(
        canonicalize_name(p.parent.name)
        for p in (ROOT / "packages").glob("*/pyproject.toml")
        if p.parent.name in tomllib.loads(p.read_text())["project"].get("scripts", {})
    )


def test_one_subset_per_image() -> None:
    names = {p.stem for p in SUBSETS.glob("*.txt")}
    assert names == {"common", "torch", *clis()}, f"requirements/images/: {sorted(names)}"


@pytest.mark.parametrize("cli", clis())
def test_cli_subset_is_its_pinned_closure(cli: str) -> None:
    problems = subset_problems(pins(SUBSETS / f"{cli}.txt"), declared_roots([cli]), pins(LOCK))
    assert not problems, f"requirements/images/{cli}.txt:\n" + "\n".join(problems)


def test_shared_subsets_are_pinned_closures() -> None:
    lock = pins(LOCK)
    # common.txt: what every image needs (stride-core and stride-contracts); torch.txt: torch at its pin.
    common = subset_problems(pins(SUBSETS / "common.txt"), declared_roots(["stride-core"]), lock)
    torch = subset_problems(pins(SUBSETS / "torch.txt"), [f"torch=={lock['torch']}"], lock)
    assert not common + torch, "\n".join(["common.txt:", *common, "torch.txt:", *torch])
    for cli in clis():
        missing = set(pins(SUBSETS / "common.txt")) - set(pins(SUBSETS / f"{cli}.txt"))
        assert not missing, f"{cli}.txt lacks the shared {sorted(missing)}"


def test_drift_is_caught() -> None:
    """The check reports a pin that left the lock, a dropped dependency and an unneeded extra."""
    lock, roots = pins(LOCK), declared_roots(["stride-plot"])
    subset = pins(SUBSETS / "stride-plot.txt")
    assert subset_problems(subset, roots, lock) == []
    assert subset_problems({**subset, "pyarrow": "1.0"}, roots, lock)[:1] == [
        f"pyarrow==1.0: requirements/lock.txt pins {lock['pyarrow']}"
    ]
    dropped = {k: v for k, v in subset.items() if k != "pyarrow"}
    assert any(p.startswith("misses pyarrow: ") for p in subset_problems(dropped, roots, lock))
    extra = subset_problems({**subset, "torch": lock["torch"]}, roots, lock)
    assert extra == ["torch: not needed (nothing in the closure requires it)"]
