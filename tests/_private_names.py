"""The private names of Stable-Baselines3 (and sb3-contrib) that a package uses, as docs/architecture.md
counts them: ``python tests/_private_names.py maesn_sb3 wrappers``.

A name counts when it starts with one underscore, SB3 defines it (a def, a class, a stored attribute or
a module-level name) and a file that imports SB3 imports it from SB3, reads or writes it as an attribute,
or overrides it with a method. Files that import nothing of SB3 are skipped: their ``_names`` are their
own.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import sys

SB3_PACKAGES = ("stable_baselines3", "sb3_contrib")


def sb3_private_names() -> set[str]:
    """Every ``_name`` (not a dunder) that SB3 or sb3-contrib defines."""
    names = set()
    for package in SB3_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        for path in pathlib.Path(spec.origin).parent.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def _imports_sb3(tree: ast.AST) -> bool:
    modules = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    return any(module.startswith(SB3_PACKAGES) for module in modules)


def used_private_names(roots: list[str]) -> dict[str, set[str]]:
    """The SB3 private names used under ``roots``, each with the places (``file:how``) that use it."""
    sb3 = sb3_private_names()
    found: dict[str, set[str]] = {}
    for root in roots:
        for path in sorted(pathlib.Path(root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if not _imports_sb3(tree):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(SB3_PACKAGES):
                    for alias in node.names:
                        if alias.name in sb3:
                            found.setdefault(alias.name, set()).add(f"{path}:import")
                elif isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in sb3:
                            found.setdefault(item.name, set()).add(f"{path}:def")
                elif isinstance(node, ast.Attribute) and node.attr in sb3:
                    found.setdefault(node.attr, set()).add(f"{path}:attr")
    return found


if __name__ == "__main__":
    used = used_private_names(sys.argv[1:] or ["maesn_sb3", "wrappers"])
    for name in sorted(used):
        print(name, " ".join(sorted(used[name])))
    print(len(used), "names")
