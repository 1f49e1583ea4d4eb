"""The package's dependency direction (docs/ARCHITECTURE.md): each package imports only the
packages below it, and no videotl import hides inside a function to dodge a cycle.

The scripts in tools/ and data_prep/ stand above every package and are not checked here: they
import torch and the packages that use it inside ``main()``, after parsing their arguments, so
that ``--help`` and argument errors answer at once (tests/test_tool_parsers.py holds them to it).
That is the one place a videotl import may sit inside a function; it dodges no cycle.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "videotl"

# package -> the videotl packages it may import (top-level modules such as registry.py count as
# packages of their own).
ALLOWED = {
    "errors": set(),
    "files": set(),
    "config": {"registry"},
    "registry": set(),
    "kernels": set(),
    "utils": {"config", "registry"},
    "models": {"config", "registry", "kernels", "utils"},
    "data": {"config", "registry", "utils"},
    "evaluation": {"utils"},
    "prep": {"config", "registry", "utils", "data"},
    "engine": {"config", "data", "models", "evaluation", "utils"},
    "visualization": {"config", "registry", "utils", "data", "models"},
    "experiments": {"config", "registry", "utils", "data", "models", "evaluation", "engine"},
    "inference": {"config", "registry", "kernels", "utils", "data", "models", "evaluation",
                  "visualization"},
}


# Dependency-free modules every package may import.
BOTTOM = {"errors", "files"}


def package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py")


def videotl_imports(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node, name) for name in names if name.split(".")[0] == "videotl"]
    return found


def modules():
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py" or p.parent
            != PACKAGE]


def test_every_package_is_listed():
    packages = {package_of(p) for p in modules()}
    assert packages == set(ALLOWED)


def test_packages_import_only_the_packages_below_them():
    wrong = []
    for path in modules():
        own = package_of(path)
        for _, name in videotl_imports(ast.parse(path.read_text())):
            target = name.split(".")[1] if "." in name else own
            if target != own and target not in ALLOWED[own] | BOTTOM:
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert wrong == []


def type_checking_blocks(tree: ast.AST) -> set[ast.AST]:
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(n for child in node.body for n in ast.walk(child))
    return inside


def test_no_videotl_import_inside_a_function():
    hidden = []
    for path in modules():
        tree = ast.parse(path.read_text())
        typing_only = type_checking_blocks(tree)
        top_level = {n for n in tree.body}
        for node, name in videotl_imports(tree):
            if node not in top_level and node not in typing_only:
                hidden.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {name}")
    assert hidden == []
