"""The import graph of ``src/vssl`` flows one way: each package imports only from its own layer's package or the
layers below, and no module imports itself through others (function-level imports count too)."""

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vssl"

LAYERS = (
    ("errors",),
    ("atomic", "config", "devices"),
    ("audio", "vision", "maps", "negatives"),  # the front ends and the map layer
    ("data",),
    ("models",),
    ("evaluation", "train", "export"),
    ("inference",),
    ("demo", "app", "infer"),
    ("cli", "__init__"),
)
LAYER = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _imports() -> dict[str, set[str]]:
    """Module name -> the vssl modules it imports (anywhere in the file)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        module = ".".join(("vssl", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vssl":
                graph[module].add(node.module)
            elif isinstance(node, ast.Import):
                graph[module].update(a.name for a in node.names if a.name.split(".")[0] == "vssl")
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_layer():
    packages = {_package(m) for m in _imports()} | {p.stem if p.is_file() else p.name for p in SRC.iterdir()}
    packages = {p for p in packages if not p.startswith("__pycache__") and p != "py"}
    assert packages <= set(LAYER), sorted(packages - set(LAYER))


def test_no_upward_imports():
    upward = [
        f"{module} -> {target}"
        for module, targets in _imports().items()
        for target in targets
        if _package(module) != _package(target) and LAYER[_package(target)] >= LAYER[_package(module)]
    ]
    assert not upward, upward


def test_no_import_cycles():
    graph = _imports()
    cycles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in done:
                visit(target, path + [target])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, cycles
