"""The structure as imports draw it: the engine runs without the front, and nothing imports in a circle.

import-linter checks the layers in CI (`lint-imports`); these tests hold the two rules a change
breaks most easily, and run with the suite.
"""

from __future__ import annotations

import subprocess
import sys

import grimp


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Groups of modules that import each other in a loop (Tarjan), imports anywhere in a file."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                loops.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return loops


def test_no_module_imports_itself_in_a_circle():
    graph = grimp.build_graph("engine", "mypt_tui", include_external_packages=False, cache_dir=None)
    assert strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=a, imported=b)
    assert strongly_connected(graph) == [["p.a", "p.b", "p.c"]]


def test_no_engine_module_imports_argparse_or_the_front():
    graph = grimp.build_graph("engine", "mypt_tui", include_external_packages=True, cache_dir=None)
    banned = ("argparse", "mypt_tui", "textual", "rich")
    found = sorted((m, i) for m in graph.modules if m.split(".")[0] == "engine"
                   for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] in banned)
    assert found == []


def test_importing_every_engine_module_loads_no_ui_library():
    code = (
        "import importlib, pkgutil, sys, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich', 'mypt_tui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine imported: {out.stdout.strip()}"


def test_mypt_help_loads_neither_torch_nor_textual():
    code = ("import sys, contextlib, io\n"
            "from mypt_tui.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            "        main(['train', '--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(','.join(sorted(n for n in ('torch', 'textual') if n in sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
