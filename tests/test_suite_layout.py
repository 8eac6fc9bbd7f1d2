"""The test suite's own rules: shared code lives in tests/support, and nothing reaches past it.

Read from the source with :mod:`ast`, so a rule broken in a file no test
collects fails here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_files(folder: str) -> list[Path]:
    return sorted(path for path in (ROOT / folder).rglob("*.py") if "_build" not in path.parts)


def imports(path: Path, text: str | None = None) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in ``path`` (or in ``text``, as if it were
    ``path``), relative ones made absolute.

    ``from package import name`` yields ``package.name`` as well, since ``name``
    may be a module.
    """
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    source = path.read_text("utf-8") if text is None else text
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def forbidden_in_tests(module: str) -> bool:
    parts = module.split(".")
    return "conftest" in parts or (
        parts[0] == "tests" and any(part.startswith("test_") for part in parts)
    )


def offences(folder: str, rule) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in python_files(folder)
        for line, module in imports(path)
        if rule(module)
    ]


@pytest.mark.parametrize("folder", ["tests", "benchmarks"])
def test_nothing_imports_a_conftest_or_a_test_module(folder):
    # Fixtures stay in conftest.py files; what tests share goes in tests/support.
    assert offences(folder, forbidden_in_tests) == []


def test_benchmarks_use_only_the_support_package_of_the_tests():
    def outside_support(module: str) -> bool:
        return module.split(".")[0] == "tests" and not module.startswith("tests.support")

    assert offences("benchmarks", outside_support) == []


@pytest.mark.parametrize("folder", ["src", "example_project"])
def test_the_package_and_the_demo_never_import_the_tests_or_the_benchmark(folder):
    assert offences(folder, lambda module: module.split(".")[0] in {"tests", "benchmarks"}) == []


def test_the_support_modules_shared_with_the_benchmark_import_no_pytest_nor_django():
    # python -m benchmarks runs without pytest, and before Django is set up.
    shared = ["network", "processes", "openai_server", "settings"]
    found = [
        f"tests/support/{name}.py:{line}: {module}"
        for name in shared
        for line, module in imports(ROOT / "tests" / "support" / f"{name}.py")
        if module.split(".")[0] in {"pytest", "django", "channels"}
    ]
    assert found == []


def test_the_rules_see_every_way_of_importing():
    source = (
        "import tests.e2e.conftest\n"
        "from tests.e2e import conftest\n"
        "from .conftest import ChatServer\n"
        "from . import test_conversation\n"
        "from ..test_checks import ids\n"
        "from tests.support.network import free_port\n"
    )
    found = [module for _line, module in imports(ROOT / "tests/e2e/sample.py", source)]

    assert [module for module in found if forbidden_in_tests(module)] == [
        "tests.e2e.conftest",
        "tests.e2e.conftest",
        "tests.e2e.conftest",
        "tests.e2e.conftest.ChatServer",
        "tests.e2e.test_conversation",
        "tests.test_checks",
        "tests.test_checks.ids",
    ]
