"""Imports run only down the layers (STYLE.md), lazy imports included: checked on the source."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# cli -> training / serving / pipelines -> models / data / features / ... -> layers -> config.
RANKS = {
    "mater_tf.cli": 5,
    "mater_tf.training": 4,
    "mater_tf.serving": 4,
    "pipelines": 4,
    "mater_tf.models": 3,
    "mater_tf.data.extraction": 3,
    "mater_tf.data": 3,
    "mater_tf.features": 3,
    "mater_tf.corpora": 3,
    "mater_tf.media": 3,
    "mater_tf.faces": 3,
    "mater_tf.reporting": 3,
    "mater_tf.builtin": 3,
    "mater_tf.layers": 2,
    "mater_tf.config": 1,
    "mater_tf.errors": 0,
    "mater_tf.environment": 0,
    "mater_tf": 0,
}


def rank(module: str) -> int:
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        if prefix in RANKS:
            return RANKS[prefix]
    raise AssertionError(f"{module} has no layer in RANKS")


def imports_of(path: Path, modules=()):
    """The modules `path` imports, lazy imports included; `from a import b` names a.b where
    a.b is one of `modules` (a submodule), else a."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if submodule in modules else node.module


def source_modules(root: Path) -> dict[str, Path]:
    paths = sorted(list((root / "mater_tf").rglob("*.py")) + list((root / "pipelines").rglob("*.py")))
    return {
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): path
        for path in paths
    }


def upward_imports(root: Path) -> list[str]:
    upward = []
    for module, path in source_modules(root).items():
        for imported in imports_of(path):
            if imported.split(".")[0] in ("mater_tf", "pipelines") and rank(imported) > rank(module):
                upward.append(f"{module} -> {imported}")
    return upward


def test_no_module_imports_a_higher_layer():
    assert not upward_imports(ROOT)


def test_the_check_finds_a_lazy_upward_import(tmp_path):
    # What predict once did: serving importing the CLI inside a function.
    (tmp_path / "mater_tf" / "serving").mkdir(parents=True)
    (tmp_path / "mater_tf" / "serving" / "predictor.py").write_text(
        "def load():\n    from mater_tf.cli.prepare import build_extractor\n"
    )
    (tmp_path / "mater_tf" / "config").mkdir()
    (tmp_path / "mater_tf" / "config" / "checks.py").write_text("import mater_tf.reporting.paper\n")
    assert upward_imports(tmp_path) == [
        "mater_tf.config.checks -> mater_tf.reporting.paper",
        "mater_tf.serving.predictor -> mater_tf.cli.prepare",
    ]


def import_cycles(root: Path) -> list[list[str]]:
    """Every circle of imports among the package's modules (lazy imports included), each as
    its sorted modules: the strongly connected components of the import graph (Tarjan)."""
    modules = source_modules(root)
    graph = {
        module: sorted({name for name in imports_of(path, modules) if name in modules and name != module})
        for module, path in modules.items()
    }
    order, low, stack, cycles = {}, {}, [], []

    def visit(module):
        order[module] = low[module] = len(order)
        stack.append(module)
        for imported in graph[module]:
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            component = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in order:
            visit(module)
    return sorted(cycles)


def test_no_circle_of_imports():
    assert import_cycles(ROOT) == []


def test_the_check_finds_a_circle_of_lazy_imports(tmp_path):
    # What media did: two modules importing each other inside functions, a third beside them.
    (tmp_path / "mater_tf" / "media").mkdir(parents=True)
    (tmp_path / "mater_tf" / "media" / "__init__.py").write_text("")
    (tmp_path / "mater_tf" / "media" / "audio_graph.py").write_text(
        "def decode():\n    from mater_tf.media import tfio_audio\n"
    )
    (tmp_path / "mater_tf" / "media" / "tfio_audio.py").write_text(
        "def decode():\n    from mater_tf.media.audio_graph import decode\n"
    )
    (tmp_path / "mater_tf" / "media" / "resample.py").write_text("import mater_tf.media.audio_graph\n")
    assert import_cycles(tmp_path) == [["mater_tf.media.audio_graph", "mater_tf.media.tfio_audio"]]
