"""The folders state the dependency rule: the core reaches adapters only through the registry."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPOSITION_ROOT = ROOT / "bot" / "cli.py"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_adapter_module() -> None:
    """bot/ imports nothing of adapters/ but the registry package, and only in the CLI."""
    for path in (ROOT / "bot").rglob("*.py"):
        for name in _imports(path):
            if name == "adapters":
                assert path == COMPOSITION_ROOT, f"{path.name} imports the registry"
            else:
                assert not name.startswith("adapters."), f"{path.name} imports {name}"


def test_cli_imports_only_the_registry_from_adapters() -> None:
    """The composition root names ``adapters.REGISTRY`` and nothing else of the adapters."""
    tree = ast.parse(COMPOSITION_ROOT.read_text(encoding="utf-8"))
    imported = [
        (node.module, [alias.name for alias in node.names])
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("adapters")
    ]
    assert imported == [("adapters", ["REGISTRY"])]


def test_adapters_never_import_each_other() -> None:
    """A channel adapter imports no other channel adapter."""
    channels = ("whatsapp", "messenger", "instagram")
    for channel in channels:
        for path in (ROOT / "adapters" / channel).rglob("*.py"):
            for name in _imports(path):
                for other in channels:
                    if other != channel:
                        assert not name.startswith(f"adapters.{other}"), f"{path} imports {name}"
