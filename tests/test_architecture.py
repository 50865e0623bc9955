"""Imports go one way: app -> models, matching. models and matching never import upwards."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "models": {"flask", "flask_security", "app", "matching"},
    "matching": {"flask", "flask_security", "app", "models"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upwards(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offences = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & FORBIDDEN[package])
        for path in files
        if _imported_packages(path) & FORBIDDEN[package]
    }
    assert offences == {}


def test_forms_declare_choices_with_select_choice() -> None:
    """WTForms 3.4 drops tuple choices; the warning is silenced only for Flask-Security's."""
    offences = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "app").rglob("forms.py"))
        if "choices=[(" in path.read_text(encoding="utf-8")
    ]
    assert offences == []
