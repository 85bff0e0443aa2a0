"""A stage's code dependencies, read from the imports of the code it runs.

A stage depends on its entry module, the project modules that the code it runs names by
registry (its task, reward version, algorithm and physics backend) and every project module
those import, transitively. Imports are read with `ast` from the source, those inside functions
included; the registries import their entries by name (importlib), so one task, reward version,
algorithm or backend never pulls in the others. tests/test_codedeps.py checks the result against
the modules a stage really has loaded when it runs.
"""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "envs", "algos")
ASSETS = ROOT / "envs" / "assets"      # model files: a module depends on those it names


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name (a package's __init__.py), or None."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


@functools.lru_cache(maxsize=None)
def direct_imports(path: Path) -> tuple[Path, ...]:
    """Project files a module imports, a package's __init__ included for each submodule (Python
    runs it first)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names, found = [], set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and "/" not in node.value
                and "\n" not in node.value and len(node.value) < 100 and (ASSETS / node.value).is_file()):
            found |= assets(ASSETS / node.value)
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.append(base)
            names += [f"{base}.{a.name}" for a in node.names]    # `from pkg import module`
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):          # the packages on the way are imported too
            file = module_file(".".join(parts[:i]))
            if file is not None:
                found.add(file)
    found.discard(path)
    return tuple(sorted(found))


def assets(path: Path) -> set[Path]:
    """A model file and the files it includes (MJCF <include file=...>), transitively."""
    out = {path}
    for included in re.findall(r'<include\s+file="([^"]+)"', path.read_text()):
        out |= assets(path.parent / included)
    return out


def closure(entries: list[Path]) -> list[str]:
    """Repo-relative paths of the entry files and everything they import, transitively."""
    seen: set[Path] = set()
    todo = [Path(e) if Path(e).is_absolute() else ROOT / e for e in entries]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.suffix == ".py":
            todo.extend(_packages_of(path))
            todo.extend(direct_imports(path))
    return sorted(str(p.relative_to(ROOT)) for p in seen)


def _packages_of(path: Path) -> list[Path]:
    """The __init__.py of every package containing path: importing a module runs them."""
    out = []
    folder = path.parent
    while folder != ROOT and (folder / "__init__.py").is_file():
        out.append(folder / "__init__.py")
        folder = folder.parent
    return out
