"""No import cycles in ``src/sophie_chat``, and settings that import nothing of the app.

The graph is read from the source (no module is imported): an edge for each
import at module level, including those inside ``try`` and ``if`` blocks.
Imports inside functions and under ``if TYPE_CHECKING:`` do not count: they
run later, or never.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import sophie_chat

PACKAGE = Path(sophie_chat.__file__).parent
ROOT = PACKAGE.name


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _module_level_imports(node.body)
            yield from _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try | ast.TryStar):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level_imports(block)
            for handler in node.handlers:
                yield from _module_level_imports(handler.body)
        elif isinstance(node, ast.With):
            yield from _module_level_imports(node.body)


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The names a statement imports: modules, and ``from`` names that may be modules."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        kept = package[: len(package) - node.level + 1]
        base = ".".join([*kept, node.module or ""]).strip(".")
    else:
        base = node.module or ""
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph() -> dict[str, set[str]]:
    """Each module of the package, and the modules of the package it imports at module level."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        imported: set[str] = set()
        for node in _module_level_imports(tree.body):
            for target in _imported(name, path, node):
                # "import a.b.c" runs a/__init__.py and a/b/__init__.py first.
                parts = target.split(".")
                imported.update(
                    ".".join(parts[:end]) for end in range(1, len(parts) + 1)
                )
        graph[name] = {target for target in imported if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None when the graph has none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph[module]):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())

    assert cycle is None, "Import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_is_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}

    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_reads_module_level_imports_only():
    graph = import_graph()

    assert "sophie_chat.models" in graph["sophie_chat.statements"]
    # Under TYPE_CHECKING only.
    assert "sophie_chat.llm.base" not in graph["sophie_chat.backends"]


def test_conf_imports_nothing_of_the_app():
    assert import_graph()["sophie_chat.conf"] <= {ROOT}


def test_settings_files_may_import_the_pool_check():
    """``from sophie_chat.db import check_pooled_connection`` before Django is set up."""
    code = (
        "from django.conf import settings\n"
        "from sophie_chat.db import check_pooled_connection\n"
        "assert callable(check_pooled_connection)\n"
        "assert not settings.configured\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
        env={"PATH": "", "PYTHONPATH": str(PACKAGE.parent)},
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
