"""The layout's rules, checked on the source: the import graph, who may import Dask/slicer/the front-ends,
what ``networks/`` may import, and that every user choice is written out once (in ``core/options``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from MedFusionLib.core import options

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "MedFusionLib"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {
        _module_name(p): ast.parse(p.read_text(encoding="utf-8"))
        for p in PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    }


def _imports(tree: ast.Module, top_level_only: bool = False) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _internal_graph(top_level_only: bool) -> dict[str, set[str]]:
    """Module -> the library modules it imports; ``from package import submodule`` counts as an edge to the
    submodule only (going through the package's name is not a dependency on its ``__init__``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, tree in modules.items():
        edges: set[str] = set()
        for node in tree.body if top_level_only else ast.walk(tree):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module in modules:
                submodules = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                edges |= submodules
                if len(submodules) < len(node.names):
                    edges.add(node.module)
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                components.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return components


def test_import_graph_has_no_cycle_but_the_method_registry():
    graph = _internal_graph(top_level_only=False)
    for component in _cycles(graph):
        # the registry loads the method modules on first use; each method module registers itself with it
        outside = [m for m in component if not m.startswith("MedFusionLib.fusion")]
        assert not outside, f"import cycle: {' -> '.join(component)}"


def test_nothing_in_the_library_imports_the_front_ends():
    offenders = [
        name
        for name, tree in _modules().items()
        if not name.startswith("MedFusionLib.apps")
        and name != "MedFusionLib.__main__"
        and any(m.startswith("MedFusionLib.apps") for m in _imports(tree))
    ]
    assert not offenders, f"import MedFusionLib.apps: {offenders}"


@pytest.mark.parametrize(
    ("library", "allowed_prefixes"),
    [
        ("slicer", ("MedFusionLib.apps", "MedFusionLib.mrml")),
        ("dask", ("MedFusionLib.apps", "MedFusionLib.study.engine")),
        ("distributed", ("MedFusionLib.apps", "MedFusionLib.study.engine")),
    ],
)
def test_heavy_front_end_libraries_stay_in_their_rooms(library, allowed_prefixes):
    offenders = [
        name
        for name, tree in _modules().items()
        if not name.startswith(allowed_prefixes)
        and any(m == library or m.startswith(library + ".") for m in _imports(tree))
    ]
    assert not offenders, f"{library} imported by {offenders}"


def test_networks_import_only_torch_and_their_layers():
    for name, tree in _modules().items():
        if not name.startswith("MedFusionLib.networks"):
            continue
        for module in _imports(tree):
            root = module.split(".")[0]
            assert root in ("torch", "__future__", "math", "typing", "collections") or module.startswith(
                "MedFusionLib.networks"
            ), f"{name} imports {module}"


def test_networks_docstring_names_which_take_spatial_dims():
    """The package docstring lists the networks with and without ``spatial_dims``; each list matches the
    ``__init__`` signatures (read from the source, without importing torch)."""
    folder = PACKAGE / "networks"
    takes: dict[str, bool] = {}
    for path in folder.glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                        names = [a.arg for a in item.args.args + item.args.kwonlyargs]
                        takes[node.name] = "spatial_dims" in names
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))) or ""
    with_dims, _, without = doc.partition("2-D only")
    listed_with = set(re.findall(r":class:`(\w+)`", with_dims.split("\n\n")[-1]))
    listed_without = set(re.findall(r":class:`(\w+)`", without.split("\n\n")[0]))
    assert listed_with and listed_without and not listed_with & listed_without
    assert all(takes[n] for n in listed_with), listed_with
    assert not any(takes[n] for n in listed_without), listed_without


def _string_sequences(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(values) == len(node.elts):
                yield node.lineno, set(values)


def test_each_choice_is_written_out_once():
    choices = {c.name: {str(v) for v in c.values} for c in options.ALL_CHOICES}
    choices["registration modes"] = set(options.REGISTRATION_MODES)
    choices["colour maps"] = set(options.COLOUR_MAP_NAMES) | {"none", "auto"}
    sources = [p for p in PACKAGE.rglob("*.py") if p.name != "options.py" and "__pycache__" not in p.parts]
    sources.append(ROOT / "MedFusion" / "MedFusion.py")
    stray = []
    for path in sources:
        for line, values in _string_sequences(ast.parse(path.read_text(encoding="utf-8"))):
            for name, wanted in choices.items():
                if values == wanted:
                    stray.append(f"{path.relative_to(ROOT)}:{line} copies the {name} list")
    assert not stray, "\n".join(stray)


def test_the_public_api_is_importable_and_lazy():
    import subprocess
    import sys

    code = (
        "import sys, MedFusionLib; assert 'torch' not in sys.modules and 'slicer' not in sys.modules; "
        "from MedFusionLib import fuse_images, register, score, available_methods, FusionOptions; "
        "assert callable(fuse_images) and callable(register) and callable(score); "
        "assert set(MedFusionLib.__all__) >= {'fuse_images', 'register', 'score', 'MedFusionLogic'}"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    result = subprocess.run(
        [sys.executable, "-m", "MedFusionLib", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "usage: medfusion" in result.stdout
