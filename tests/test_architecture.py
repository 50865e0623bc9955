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


def _module_graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Every project module and the project modules it imports, also inside functions."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            for target in targets:
                found = resolve(target)
                if found and found != name:
                    graph[name].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_outside_the_models() -> None:
    """Every import counts, also one inside a function: a cycle hidden there is still a
    cycle. SQLModel relationships may tie the models to each other."""
    cycles = _cycles(_module_graph(("app", "matching", "models")))
    assert [c for c in cycles if not all(m.startswith("models") for m in c)] == []


# What the session module may import from the app: the catalogue version, which listens on
# the engine for committed writes (for the public page cache) and itself imports nothing of
# the app.
SESSION_LAYER = {"app.catalogue_version"}


def test_the_session_module_knows_nothing_of_services_or_jobs() -> None:
    graph = _module_graph(("app", "matching", "models"))
    assert sorted(m for m in graph["app.db"] if m.startswith("app.")) == sorted(SESSION_LAYER)
    for module in SESSION_LAYER:
        assert sorted(m for m in graph[module] if m.startswith("app.")) == []


# Where a commit may be written: the session module's one commit per request, the command-line
# commands (one per command), the background workers (each claimed row is its own unit), and
# the catalogue version's bump, made on its own connection after a write was committed.
COMMITS_ALLOWED = {
    "app/catalogue_version.py",
    "app/db.py",
    "app/mail.py",
    "app/notify.py",
    "app/queue.py",
    "app/webhooks.py",
}


def _commits(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "commit"
    ]


def test_requests_commit_in_one_place() -> None:
    """Views, the API, the account pages and the services never commit: every request's
    writes are committed once by `app.transaction.one_transaction` (through `app.db`)."""
    offences = {
        name: lines
        for path in sorted((ROOT / "app").rglob("*.py"))
        if (name := str(path.relative_to(ROOT))) not in COMMITS_ALLOWED
        and not name.startswith("app/cli/")
        and (lines := _commits(path))
    }
    assert offences == {}
