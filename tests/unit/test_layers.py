"""The one direction of the code: the pure core imports no storage SDK and reads no environment."""

from __future__ import annotations

import ast
from pathlib import Path

import shared.core

CORE = Path(shared.core.__file__).parent
FORBIDDEN_ROOTS = {"azure", "sqlite3"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_imports_no_azure_sdk_and_no_sqlite() -> None:
    offenders = {
        str(path.relative_to(CORE)): sorted(n for n in _imports(path) if n.split(".")[0] in FORBIDDEN_ROOTS)
        for path in CORE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(offenders) > 20  # the walk found the core's modules


def test_the_core_reads_no_environment_and_no_adapter() -> None:
    for path in CORE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "os.environ" not in text and "getenv" not in text, path
        assert not any(n.startswith(("shared.adapters", "shared.settings")) for n in _imports(path)), path
