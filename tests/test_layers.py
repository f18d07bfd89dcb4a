"""The import graph of ``segzero`` keeps its layers and has no cycle (every import counts, in functions too).

Layers, bottom to top; a module may import its own layer and the ones below, never one above:

0. core: ``answer``, ``parsing``, ``geometry``, ``rewards``, ``metrics``, ``prompts``, ``points``, ``images``,
   ``errors``, ``rle`` and ``assets`` (the shipped model's files and their constants);
1. model adapters: ``models``;
2. ``pipeline`` and ``video`` (the video pipeline);
3. applications: ``eval``, ``train``, ``data``, ``worlds``; ``shapes`` (the shapes model's own code: nothing
   outside it but ``cli`` imports it; recipes name its functions by import path);
4. ``serve``;
5. ``cli``.

Run: ``pytest tests/test_layers.py -q``
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "segzero"
LAYERS: dict[str, int] = {
    **dict.fromkeys(
        ("", "answer", "parsing", "geometry", "rewards", "metrics", "prompts", "points", "images", "errors", "rle"), 0
    ),
    "assets": 0,
    "models": 1,
    "pipeline": 2,
    "video": 2,
    **dict.fromkeys(("eval", "train", "data", "worlds", "shapes"), 3),
    "serve": 4,
    "cli": 5,
}


def _modules() -> dict[str, Path]:
    return {
        ("segzero." + ".".join(p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__"): p
        for p in SRC.rglob("*.py")
    }


def _graph() -> dict[str, set[str]]:
    """module -> the segzero modules it imports (``from pkg import sub`` counts as importing ``pkg.sub``)."""
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segzero"):
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [node.module, *subs]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("segzero")]
            else:
                continue
            graph[mod].update(t for t in targets if t in mods and t != mod)
    return graph


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else ""]


def test_every_module_has_a_layer():
    unknown = sorted(m for m in _modules() if (m.split(".") + [""])[1] not in LAYERS)
    assert unknown == []  # a new top-level module or package must be placed in LAYERS


def test_no_import_goes_up_a_layer():
    upward = sorted(f"{m} -> {t}" for m, targets in _graph().items() for t in targets if _layer(t) > _layer(m))
    assert upward == []


def test_no_import_cycle():
    graph, index, low, stack, on_stack, cycles = _graph(), {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(_modules()):
        if module not in index:
            visit(module)
    assert cycles == []


def test_nothing_but_the_cli_imports_the_shapes_package():
    # the shapes model's code plugs in by import path (recipes' reward_plugins); production never imports it
    users = sorted(
        f"{m} -> {t}"
        for m, targets in _graph().items()
        for t in targets
        if t.startswith("segzero.shapes") and not m.startswith(("segzero.shapes", "segzero.cli"))
    )
    assert users == []
