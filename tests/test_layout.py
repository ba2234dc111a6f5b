"""The layout says what is deployed: the function's modules never import the local tools, and no module
imports another that (directly or not) imports it back."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcs_maintenance.tools import package

ROOT = Path(__file__).resolve().parent.parent


def _modules(top: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / top).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _graph(top: str) -> dict[str, set[str]]:
    """module -> the modules of `top` its import statements name (lazy and TYPE_CHECKING ones included); a
    package's own __init__ imported by its sub-modules does not count (Python loads it first anyway)."""
    modules = _modules(top)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported, _ in package.imported_names(path, name):
            target = imported if imported in modules else imported.rpartition(".")[0]
            if target in modules and target != name and not name.startswith(target + "."):
                targets.add(target)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


@pytest.mark.parametrize("top", ["dcs_maintenance", "dcs_emulator"])
def test_no_import_cycles(top):
    assert _cycles(_graph(top)) == []


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_function_never_imports_a_local_tool():
    graph = _graph("dcs_maintenance")
    for name, targets in graph.items():
        if not package.is_local_tool(name):
            assert not [t for t in targets if package.is_local_tool(t)], name


def test_local_tools_live_in_their_own_sub_package():
    local = {"cli", "demo", "serve", "local", "package", "progress"}
    assert not [m for m in local if (ROOT / "dcs_maintenance" / f"{m}.py").exists()]
    assert all((ROOT / "dcs_maintenance" / "tools" / f"{m}.py").is_file() for m in local)
