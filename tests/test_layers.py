"""The layer table of docs/architecture.md holds in the code: imports flow up the table only."""

from __future__ import annotations

import ast
from pathlib import Path

import descend

# Rows in the table's order; a module may import its own row and the rows above it.
ROWS = [
    {"optim"},
    {"schedules"},
    {"stopping"},
    {"curvature"},
    {"minimize", "terrains"},
    {"train"},
    {"tasks"},
    {"diagnose"},
    {"tune"},
    {"report"},
    {"comparison"},
    {"bench"},
    {"explore"},
    {"cli"},
]
SHARED = {"_validation"}  # helpers that are not a layer, importable anywhere
# The report layer renders plain data and depends on no other layer.
ONLY = {"report": {"report"}}

PACKAGE = Path(descend.__file__).parent


def _row(layer: str) -> int:
    for i, row in enumerate(ROWS):
        if layer in row:
            return i
    raise AssertionError(f"{layer!r} is in no row of the layer table")


def _layer_of(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE)
    return None if rel.parts == ("__init__.py",) else rel.parts[0].removesuffix(".py")


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "descend":
                if len(parts) > 1:
                    names.add(parts[1])
                else:
                    names.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "descend" and len(parts) > 1:
                    names.add(parts[1])
    return names - SHARED


def test_every_package_module_is_in_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer = _layer_of(path)
        if layer is not None and layer not in SHARED:
            _row(layer)


def test_imports_flow_up_the_table() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer_of(path)
        if layer is None or layer in SHARED:
            continue
        for target in _imported_layers(path):
            allowed = ONLY.get(layer)
            ok = target in allowed if allowed is not None else _row(target) <= _row(layer)
            if not ok:
                wrong.append(f"{path.relative_to(PACKAGE)} ({layer}) imports {target}")
    assert not wrong, "imports against the layer table:\n" + "\n".join(wrong)
