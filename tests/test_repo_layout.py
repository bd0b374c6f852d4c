"""Repository rules: BUILD files mirror pyproject.toml, imports respect boundaries, containers are current."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import load_script


def _find_root() -> Path:
    for start in (Path(__file__).resolve().parent, Path.cwd()):
        for candidate in (start, *start.parents):
            if (candidate / "pants.toml").is_file() and (candidate / "packages").is_dir():
                return candidate
    raise RuntimeError(f"no repository root (pants.toml + packages/) above {__file__} or {Path.cwd()}")


ROOT = _find_root()
CLI_MODULES = frozenset(
    {"stride_data", "stride_stats", "stride_train", "stride_generate", "stride_eval", "stride_plot"}
)
LIBRARY_MODULES = frozenset({"stride_core", "stride_model", "stride_contracts"})
TORCH_FREE_MODULES = frozenset({"stride_core", "stride_contracts"})
CONTRACTS_MAY_IMPORT = frozenset({"pydantic"})
# Import names that differ from their distribution's name (PEP 503 normalised).
MODULE_TO_DISTRIBUTION = {
    "yaml": "pyyaml",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "dateutil": "python-dateutil",
}
REQUIRED_ROOT_PATTERNS = {"/packages/*/src", "/packages/*/tests", "/schemas/src", "/schemas/tests", "/tests"}
REQUIRED_BACKENDS = {
    "pants.backend.python",
    "pants.backend.experimental.python.lint.ruff.check",
    "pants.backend.python.typecheck.mypy",
}
LOCK_FILE = "requirements/lock.txt"


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- packages


@dataclass(frozen=True)
class Package:
    """One distribution folder and what its pyproject.toml declares."""

    folder: Path
    name: str
    version: str
    description: str
    requirements: frozenset[str]
    scripts: dict[str, str]

    @property
    def pyproject(self) -> Path:
        return self.folder / "pyproject.toml"

    @property
    def build(self) -> Path:
        return self.folder / "BUILD"

    @property
    def module(self) -> str:
        found = [p.parent.name for p in sorted((self.folder / "src").glob("*/__init__.py"))]
        return found[0] if len(found) == 1 else ""

    @property
    def module_dir(self) -> Path:
        return self.folder / "src" / self.module

    def sources(self) -> list[Path]:
        return sorted(p for p in self.module_dir.rglob("*.py") if "__pycache__" not in p.parts)


def package_folders() -> list[Path]:
    return [ROOT / "schemas", *sorted(p for p in (ROOT / "packages").iterdir() if p.is_dir())]


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"unreadable requirement {requirement!r}"
    return normalize(match.group(1))


@cache
def packages() -> dict[str, Package]:
    """Every distribution with a pyproject.toml, keyed by normalised name."""
    found = {}
    for folder in package_folders():
        if not (folder / "pyproject.toml").is_file():
            continue
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        package = Package(
            folder=folder,
            name=project["name"],
            version=project["version"],
            description=project.get("description", ""),
            requirements=frozenset(_requirement_name(r) for r in project.get("dependencies", [])),
            scripts=dict(project.get("scripts", {})),
        )
        found[normalize(package.name)] = package
    return found


@cache
def module_owners() -> dict[str, Package]:
    return {p.module: p for p in packages().values() if p.module}


def first_party(package: Package) -> set[str]:
    return {r for r in package.requirements if r in packages()}


def closure(package: Package) -> list[Package]:
    """The package and its first-party dependencies, dependencies first."""
    ordered: list[Package] = []

    def visit(current: Package) -> None:
        if current not in ordered:
            for name in sorted(first_party(current)):
                visit(packages()[name])
            ordered.append(current)

    visit(package)
    return ordered


def is_cli(package: Package) -> bool:
    return package.folder.parent.name == "packages" and package.name in package.scripts


PACKAGE_IDS = [p.name for p in package_folders()]


# --------------------------------------------------------------------------- BUILD files


class BuildFileError(ValueError):
    """A BUILD file uses syntax beyond literals and target calls."""


@dataclass(frozen=True)
class Call:
    """A target (or a call like python_artifact) in a BUILD file."""

    kind: str
    kwargs: dict[str, Any]
    line: int


def _literal(node: ast.expr, where: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item, where) for item in node.elts]
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise BuildFileError(f"{where}:{node.lineno}: ** unpacking is not supported")
        return {_literal(k, where): _literal(v, where) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args:
        return Call(node.func.id, _keywords(node, where), node.lineno)
    raise BuildFileError(f"{where}:{node.lineno}: unsupported expression {ast.unparse(node)!r}")


def _keywords(call: ast.Call, where: str) -> dict[str, Any]:
    if any(kw.arg is None for kw in call.keywords):
        raise BuildFileError(f"{where}:{call.lineno}: ** unpacking is not supported")
    return {str(kw.arg): _literal(kw.value, where) for kw in call.keywords}


def parse_build(path: Path) -> list[Call]:
    """Targets of a BUILD file, read with ast: nothing in it is executed."""
    where = rel(path)
    tree = ast.parse(path.read_text(), filename=where)
    targets = []
    for statement in tree.body:
        value = statement.value if isinstance(statement, ast.Expr) else None
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and not value.args):
            raise BuildFileError(f"{where}:{statement.lineno}: expected a target call with keyword arguments")
        targets.append(Call(value.func.id, _keywords(value, where), value.lineno))
    return targets


def targets_of(path: Path, kind: str) -> list[Call]:
    return [t for t in parse_build(path) if t.kind == kind]


def glob_owned(folder: Path, patterns: list[str]) -> set[Path]:
    """Files matched by a Pants sources list (globs relative to the BUILD folder, '!' excludes)."""
    included: set[Path] = set()
    excluded: set[Path] = set()
    for pattern in patterns:
        target = excluded if pattern.startswith("!") else included
        target.update(p for p in folder.glob(pattern.removeprefix("!")) if p.is_file())
    return included - excluded


def resolve_address(address: str, build: Path) -> tuple[Path, str]:
    """The BUILD file and target name an address such as ':src' or 'packages/stride-core:dist' names."""
    spec, _, name = address.removeprefix("//").partition(":")
    folder = build.parent if not spec else ROOT / spec
    return folder / "BUILD", name or folder.name


def distribution_of(package: Package) -> Call:
    dists = targets_of(package.build, "python_distribution")
    assert len(dists) == 1, f"{rel(package.build)}: expected one python_distribution, found {len(dists)}"
    return dists[0]


@pytest.mark.parametrize("folder", package_folders(), ids=PACKAGE_IDS)
def test_every_package_has_pyproject_build_and_one_module(folder: Path) -> None:
    missing = [rel(folder / f) for f in ("pyproject.toml", "BUILD") if not (folder / f).is_file()]
    assert not missing, f"missing: {', '.join(missing)}"
    package = next(p for p in packages().values() if p.folder == folder)
    modules = sorted(p.parent.name for p in (folder / "src").glob("*/__init__.py"))
    expected = normalize(package.name).replace("-", "_")
    assert modules == [expected], (
        f"{rel(folder)}/src: expected exactly one package {expected}/, found {modules}"
    )
    if folder.parent.name == "packages":
        assert folder.name == package.name, (
            f"{rel(package.pyproject)}: name {package.name!r} != folder {folder.name!r}"
        )


@pytest.mark.parametrize("folder", package_folders(), ids=PACKAGE_IDS)
def test_build_distribution_matches_pyproject(folder: Path) -> None:
    package = next(p for p in packages().values() if p.folder == folder)
    build = rel(package.build)
    dist = distribution_of(package)
    where = f"{build}:{dist.line}"
    problems = []
    provides = dist.kwargs.get("provides")
    if not (isinstance(provides, Call) and provides.kind == "python_artifact"):
        pytest.fail(f"{where}: python_distribution needs provides=python_artifact(...)")
    for key in ("name", "version", "description"):
        expected = getattr(package, key)
        if (key != "description" or key in provides.kwargs) and provides.kwargs.get(key) != expected:
            problems.append(
                f"{build}:{provides.line}: {key}={provides.kwargs.get(key)!r}, pyproject says {expected!r}"
            )
    scripts = dist.kwargs.get("entry_points", {}).get("console_scripts", {})
    if scripts != package.scripts:
        problems.append(
            f"{where}: console_scripts {scripts} != pyproject [project.scripts] {package.scripts}"
        )
    siblings: set[str] = set()
    owns_sources = False
    # ('!!' entries exclude a target from the wheel's requirements, e.g. type stubs: nothing to resolve)
    for address in (a for a in dist.kwargs.get("dependencies", []) if not a.startswith("!")):
        target_build, name = resolve_address(address, package.build)
        if not target_build.is_file():
            problems.append(f"{where}: dependency {address!r}: no BUILD file {rel(target_build)}")
            continue
        target = next((t for t in parse_build(target_build) if t.kwargs.get("name") == name), None)
        if target is None:
            problems.append(f"{where}: dependency {address!r}: {rel(target_build)} has no target {name!r}")
        elif target_build == package.folder / "src" / "BUILD":
            owns_sources = owns_sources or target.kind == "python_sources"
        elif target.kind != "python_distribution":
            problems.append(
                f"{where}: dependency {address!r} is a {target.kind}; depend on the sibling's distribution"
            )
        else:
            siblings.add(normalize(target.kwargs["provides"].kwargs["name"]))
    if not owns_sources:
        problems.append(f"{where}: python_distribution does not depend on the python_sources in src/BUILD")
    if siblings != first_party(package):
        problems.append(
            f"{where}: sibling distributions {sorted(siblings)} != first-party dependencies in "
            f"{rel(package.pyproject)} {sorted(first_party(package))}"
        )
    for script, entry_point in package.scripts.items():
        module, _, function = entry_point.partition(":")
        source = package.folder / "src" / (module.replace(".", "/") + ".py")
        defined = source.is_file() and any(
            isinstance(node, ast.FunctionDef) and node.name == function
            for node in ast.parse(source.read_text()).body
        )
        if not defined:
            problems.append(
                f"{rel(package.pyproject)}: entry point {script} = {entry_point!r}: no such function in "
                f"{rel(source)}"
            )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("folder", package_folders(), ids=PACKAGE_IDS)
def test_build_targets_own_every_file(folder: Path) -> None:
    package = next(p for p in packages().values() if p.folder == folder)
    # Sources and tests are declared in their source roots (src/BUILD, tests/BUILD): Pants takes a target's
    # source root from its BUILD folder. Globs are relative to that folder.
    builds = [folder / "src" / "BUILD", folder / "tests" / "BUILD"]
    missing = [rel(b) for b in builds if not b.is_file()]
    assert not missing, f"missing: {', '.join(missing)}"
    targets = [(build.parent, t) for build in builds for t in parse_build(build)]

    def owned(*kinds: str) -> set[Path]:
        return set().union(
            *(glob_owned(base, t.kwargs.get("sources", [])) for base, t in targets if t.kind in kinds)
        )

    def present(base: Path, keep: Any) -> set[Path]:
        return {p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts and keep(p)}

    expected = {
        "python_sources": present(package.module_dir, lambda p: p.suffix == ".py"),
        "resources": present(package.module_dir, lambda p: p.suffix not in {".py", ".pyc"}),
        "python_tests or python_test_utils": present(folder / "tests", lambda p: p.suffix == ".py"),
    }
    problems = []
    for kinds, files in expected.items():
        for path in sorted(files - owned(*kinds.split(" or "))):
            problems.append(f"{rel(path)}: not owned by any {kinds} target in {rel(folder)}/src|tests/BUILD")
    test_globs = [g for _, t in targets if t.kind == "python_tests" for g in t.kwargs.get("sources", [])]
    for path in sorted(glob_owned(folder / "tests", test_globs)):
        if not path.name.startswith("test_"):
            problems.append(f"{rel(path)}: python_tests owns a file that is not a test module")
    assert not problems, "\n".join(problems)


def test_pants_toml_and_root_build() -> None:
    config = tomllib.loads((ROOT / "pants.toml").read_text())
    problems = []
    if not str(config["GLOBAL"].get("pants_version", "")).startswith("2."):
        problems.append(f"pants.toml: pants_version {config['GLOBAL'].get('pants_version')!r} is not Pants 2")
    missing = REQUIRED_BACKENDS - set(config["GLOBAL"].get("backend_packages", []))
    if missing:
        problems.append(f"pants.toml: [GLOBAL] backend_packages lacks {sorted(missing)}")
    missing = REQUIRED_ROOT_PATTERNS - set(config.get("source", {}).get("root_patterns", []))
    if missing:
        problems.append(f"pants.toml: [source] root_patterns lacks {sorted(missing)}")
    if config.get("python", {}).get("interpreter_constraints") != ["==3.11.*"]:
        problems.append("pants.toml: [python] interpreter_constraints must be ['==3.11.*']")
    resolve = config.get("python", {}).get("default_resolve", "python-default")
    if resolve not in config.get("python", {}).get("resolves", {}):
        problems.append(f"pants.toml: [python.resolves] has no lockfile for the default resolve {resolve!r}")
    requirements = targets_of(ROOT / "BUILD", "python_requirements")
    if [t.kwargs.get("source") for t in requirements] != [LOCK_FILE]:
        problems.append(f"BUILD: expected one python_requirements(source={LOCK_FILE!r})")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- imports


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str

    @property
    def top(self) -> str:
        return self.module.partition(".")[0]

    def __str__(self) -> str:
        return f"{rel(self.path)}:{self.line}: imports {self.module}"


def _dynamic_target(node: ast.Call) -> str | None:
    """The module of importlib.import_module('x') / __import__('x') with a literal name."""
    func = node.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}
    )
    if named and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def imports_in(path: Path) -> Iterator[Import]:
    """Absolute imports anywhere in a file (also in functions, TYPE_CHECKING blocks, import_module calls)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (Import(path, node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield Import(path, node.lineno, node.module)
        elif isinstance(node, ast.Call) and (target := _dynamic_target(node)):
            yield Import(path, node.lineno, target)


@cache
def all_imports() -> list[tuple[Package, Import]]:
    return [(p, found) for p in packages().values() for path in p.sources() for found in imports_in(path)]


def violations(rule: Any) -> list[str]:
    found = []
    for package, imported in all_imports():
        reason = rule(package, imported)
        if reason:
            found.append(f"{imported}: {reason}")
    return found


def test_packages_are_classified() -> None:
    cli = {p.module for p in packages().values() if is_cli(p)}
    libraries = {p.module for p in packages().values() if not is_cli(p)}
    assert cli == CLI_MODULES, f"CLI packages (console script named after the package) are {sorted(cli)}"
    assert libraries == LIBRARY_MODULES, f"library packages are {sorted(libraries)}"


def test_clis_never_import_each_other() -> None:
    def rule(package: Package, imported: Import) -> str | None:
        if package.module in CLI_MODULES and imported.top in CLI_MODULES - {package.module}:
            return f"CLI {package.module} must not import another CLI; exchange artifacts instead"
        return None

    found = violations(rule)
    assert not found, "\n".join(found)


def test_libraries_never_import_clis() -> None:
    def rule(package: Package, imported: Import) -> str | None:
        if package.module in LIBRARY_MODULES and imported.top in CLI_MODULES:
            return f"library {package.module} must not import CLI module {imported.top}"
        return None

    found = violations(rule)
    assert not found, "\n".join(found)


def test_torch_only_where_declared() -> None:
    allowed = sorted(p.name for p in packages().values() if "torch" in p.requirements)

    def rule(package: Package, imported: Import) -> str | None:
        if imported.top != "torch":
            return None
        if package.module in TORCH_FREE_MODULES:
            return f"{package.module} must stay free of torch (its images and users do not install it)"
        if "torch" not in package.requirements:
            return f"{rel(package.pyproject)} does not depend on torch (only {', '.join(allowed)} do)"
        return None

    found = violations(rule)
    assert not found, "\n".join(found)


def test_contracts_import_only_pydantic_and_stdlib() -> None:
    def rule(package: Package, imported: Import) -> str | None:
        if package.module != "stride_contracts":
            return None
        if imported.top in sys.stdlib_module_names or imported.top in CONTRACTS_MAY_IMPORT | {package.module}:
            return None
        return "stride_contracts may import only pydantic and the standard library"

    found = violations(rule)
    assert not found, "\n".join(found)


def test_first_party_imports_are_declared() -> None:
    def rule(package: Package, imported: Import) -> str | None:
        owner = module_owners().get(imported.top)
        if owner is None or owner is package or normalize(owner.name) in package.requirements:
            return None
        return f"{owner.name} is not in [project].dependencies of {rel(package.pyproject)}"

    found = violations(rule)
    assert not found, "\n".join(found)


def test_third_party_imports_are_installed_with_the_package() -> None:
    """A third-party import must be a dependency of the package or of a first-party package it depends on."""

    def rule(package: Package, imported: Import) -> str | None:
        top = imported.top
        if top in sys.stdlib_module_names or top in module_owners():
            return None
        distribution = normalize(MODULE_TO_DISTRIBUTION.get(top, top))
        if any(distribution in p.requirements for p in closure(package)):
            return None
        return (
            f"distribution {distribution!r} is not a dependency of {rel(package.pyproject)} "
            f"nor of its first-party dependencies (add it, or map the module in MODULE_TO_DISTRIBUTION)"
        )

    found = violations(rule)
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------- containers


def _renderer() -> ModuleType:
    return load_script(ROOT / "ci" / "render_containers.py", "render_containers")


def _first_difference(a: str, b: str) -> str:
    for number, (left, right) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False), start=1):
        if left != right:
            return f"line {number}: committed {left!r}, template {right!r}"
    return f"committed has {len(a.splitlines())} lines, template {len(b.splitlines())}"


def test_containers_match_template(tmp_path: Path) -> None:
    renderer = _renderer()
    rendered = renderer.render(ROOT)
    renderer.write(rendered, tmp_path)
    problems = []
    for name in sorted(rendered):
        committed, fresh = ROOT / name, tmp_path / name
        if not committed.is_file():
            problems.append(f"{name}: missing")
        elif committed.read_text() != fresh.read_text():
            difference = _first_difference(committed.read_text(), fresh.read_text())
            problems.append(f"{name}: differs from the template, {difference}")
    generated = {ROOT / name for name in rendered}
    for path in sorted((ROOT / "containers").rglob("*")):
        if path.is_file() and path.parent != ROOT / "containers" and path not in generated:
            problems.append(f"{rel(path)}: not produced by ci/render_containers.py")
    if problems:
        problems.append("run `python ci/render_containers.py` and commit containers/")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("cli", sorted(p.name for p in packages().values() if is_cli(p)))
def test_cli_image_recipes(cli: str) -> None:
    package = packages()[cli]
    folder = ROOT / "containers" / cli
    dockerfile, definition = folder / "Dockerfile", folder / f"{cli}.def"
    missing = [rel(p) for p in (dockerfile, definition) if not p.is_file()]
    assert not missing, f"missing: {', '.join(missing)}"
    docker_text, def_text = dockerfile.read_text(), definition.read_text()
    expected = {rel(p.folder) for p in closure(package)}
    # build/image-inputs: the optional CA bundle ci/build-images.sh passes to the builder stage.
    # requirements/images/: the pinned subsets of the lock the image installs (tests/test_image_requirements.py).
    subsets = {f"requirements/images/{n}.txt" for n in ("common", "torch", cli)}
    copied = set(re.findall(r"^COPY (\S+?)/? \S+$", docker_text, re.M)) - subsets - {"build/image-inputs"}
    problems = []
    if copied != expected:
        problems.append(
            f"{rel(dockerfile)}: copies {sorted(copied)}, the CLI needs exactly {sorted(expected)}"
        )
    own = f"--no-deps --requirement /opt/stride/requirements/{cli}.txt"
    if own not in docker_text or f"COPY requirements/images/{cli}.txt " not in docker_text:
        problems.append(f"{rel(dockerfile)}: must install its pinned subset of {LOCK_FILE} ({own})")
    if f'ENTRYPOINT ["{cli}"]' not in docker_text:
        problems.append(f'{rel(dockerfile)}: ENTRYPOINT must be ["{cli}"]')
    if not re.search(rf'^%runscript\n\s+exec {re.escape(cli)} "\$@"$', def_text, re.M):
        problems.append(f"{rel(definition)}: %runscript must exec {cli}")
    torch = any("torch" in p.requirements for p in closure(package))
    for path, text in ((dockerfile, docker_text), (definition, def_text)):
        # GPU-capable: torch's default (CUDA) wheel, its variant chosen by TORCH_INDEX_URL; the wheel brings
        # the CUDA runtime, so no CUDA base image.
        gpu = "TORCH_INDEX_URL" in text and "nvidia/cuda:" not in text
        if torch != gpu:
            problems.append(
                f"{rel(path)}: {'needs' if torch else 'must not have'} the CUDA torch wheel switch (torch: {torch})"
            )
        if not torch and re.search(r"\btorch\b", text):
            problems.append(f"{rel(path)}: installs torch although {cli} does not depend on it")
    assert not problems, "\n".join(problems)


def test_containers_readme_exists() -> None:
    readme = ROOT / "containers" / "README.md"
    assert readme.is_file(), f"missing {rel(readme)}"
    text = readme.read_text()
    for needle in ("apptainer run --nv stride-train.sif --help", "sbatch", "torchrun"):
        assert needle in text, f"{rel(readme)}: should show {needle!r}"
