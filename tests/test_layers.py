"""The layer rules of docs/architecture.md, read from the imports of every module under scoring/
(those inside functions too): each rule names what a layer must never import."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "scoring"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PATHS = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if "migrations" not in path.parts}


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, as dotted names: `from a import b` is a.b when that is a module
    of ours, else a."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in PATHS else node.module)
    return found


MODULES = {name: imports_of(path) for name, path in PATHS.items()}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# (layer, what it must never import, why)
RULES = [
    ("scoring.selectors", "scoring.services", "reads never depend on writes"),
    ("scoring.selectors", "scoring.engine", "reads never depend on the engine"),
    ("scoring.selectors", "rest_framework", "reads know no HTTP"),
    ("scoring.services", "rest_framework", "services raise the app's own errors, never DRF's"),
    ("scoring.engine", "rest_framework", "the engine knows no HTTP of ours"),
    ("scoring.scorers", "scoring.models", "scorers know no models"),
    ("scoring.scorers", "rest_framework", "scorers know no HTTP of ours"),
    ("scoring.weave", "scoring.services", "the Weave vocabulary depends on no flow"),
    ("scoring.weave", "scoring.engine", "the Weave vocabulary depends on no flow"),
    ("scoring.weave", "rest_framework", "the Weave vocabulary knows no HTTP of ours"),
    ("scoring.errors", "rest_framework", "the app's errors are its own"),
    ("scoring.web", "scoring.engine", "pages read through selectors and write through services"),
    ("scoring.web", "rest_framework", "pages are Django views, not the API"),
]


@pytest.mark.parametrize(("layer", "forbidden", "why"), RULES, ids=[f"{r[0]}-{r[1]}" for r in RULES])
def test_layer_never_imports(layer, forbidden, why):
    """A layer never imports what its rule forbids."""
    broken = sorted(
        f"{module} imports {name}"
        for module, names in MODULES.items()
        if within(module, layer)
        for name in names
        if within(name, forbidden)
    )
    assert not broken, f"{why}: " + "; ".join(broken)


# The pages' template tags are part of the pages.
REQUEST_LAYERS = {"scoring.api": ("scoring.api",), "scoring.web": ("scoring.web", "scoring.templatetags")}


@pytest.mark.parametrize("layer", REQUEST_LAYERS)
def test_only_urls_import_the_request_layers(layer):
    """Nothing imports the API or the pages but their own modules (and the project's urls)."""
    broken = sorted(
        f"{module} imports {name}"
        for module, names in MODULES.items()
        if not any(within(module, own) for own in REQUEST_LAYERS[layer])
        for name in names
        if within(name, layer)
    )
    assert not broken, "; ".join(broken)


def _scoring_module(name: str) -> str | None:
    """The module of ours that an imported name is, or lives in."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def test_no_import_circles():
    """No module of scoring/ reaches itself through the imports of others."""
    graph = {
        module: {target for name in names if (target := _scoring_module(name)) and target != module}
        for module, names in MODULES.items()
    }
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module):
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import circles: " + "; ".join(cycles)


def test_rules_see_every_layer():
    """The rules read real modules: every layer they name exists and has imports to check."""
    for layer in {rule[0] for rule in RULES}:
        assert any(within(module, layer) and names for module, names in MODULES.items()), layer
