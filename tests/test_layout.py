"""The package's shape: no import cycle, no module using another's private names, every package
installed, and the README's layout section naming every module."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qa_pipeline"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    package = module.split(".")
    if not MODULES[module].name == "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def ours(name: str) -> str | None:
    """The qa_pipeline module `name` is, or lies in (a name imported from it)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in `module`, at any depth
    (function-level imports included)."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += imports_of(module, node)
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _name, _line in imports(module):
            target = ours(target)
            if target and target != module and not module.startswith(target + "."):  # a package's own __init__
                edges[module].add(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checks_see_a_cycle_and_the_package_has_none(tmp_path, monkeypatch):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    edges = graph()
    assert edges["qa_pipeline.batch.engine"] >= {"qa_pipeline.batch.plan", "qa_pipeline.batch.store"}
    assert find_cycle(edges) is None
    # an import hidden in a function counts as much as one at the top (speakers ↔ diarize was one)
    hidden = tmp_path / "cues.py"
    hidden.write_text("def f():\n    from qa_pipeline.speakers.roles import build_transcript\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "qa_pipeline.speakers.cues", hidden)
    assert find_cycle(graph()) is not None


# Layers, lowest first: a module imports its own layer and the ones below, never one above. The
# stages (audio … scoring) and the small shared modules are the ground floor; the fold of final
# verdicts (machine ⊕ decisions ⊕ trust) sits under the outputs, the batch, and the desk and
# calibration that all use it, so neither the batch nor the outputs import the desk or calibration.
LAYERS = (
    ("qa_pipeline.final_verdicts", "qa_pipeline.dispute_deadlines"),
    ("qa_pipeline.output", "qa_pipeline.mood.table", "qa_pipeline.reasons.table"),
    ("qa_pipeline.batch", "qa_pipeline.morning", "qa_pipeline.alerts"),
    ("qa_pipeline.calibration", "qa_pipeline.review"),
)


def layer(module: str) -> int:
    for n, members in enumerate(LAYERS, start=1):
        if any(module == m or module.startswith(m + ".") for m in members):
            return n
    return 0


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
                  for m, targets in edges.items() for t in targets if layer(t) > layer(m))


def test_no_lower_layer_imports_a_higher_one(tmp_path, monkeypatch):
    edges = graph()
    assert "qa_pipeline.final_verdicts" in edges["qa_pipeline.output.tables"]
    assert "qa_pipeline.final_verdicts" in edges["qa_pipeline.review.app"]
    assert upward_imports(edges) == []
    # the circle issue 22 found: the batch folding decisions by importing the desk
    store = PACKAGE / "batch" / "store.py"
    copy = tmp_path / "store.py"
    copy.write_text(store.read_text(encoding="utf-8") + "\nfrom qa_pipeline.review.export import batch_finals\n",
                    encoding="utf-8")
    monkeypatch.setitem(MODULES, "qa_pipeline.batch.store", copy)
    assert upward_imports(graph()) == ["qa_pipeline.batch.store (layer 3) imports qa_pipeline.review.export (layer 4)"]


def private_uses(module: str) -> list[str]:
    """Where `module` imports a private (_x) name of another qa_pipeline module, or reads one
    through a module it imported (`mod._x`)."""
    found = []
    aliases: dict[str, str] = {}
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if ours(alias.name) == alias.name:
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            for target, name, line in imports_of(module, node):
                if name is None:
                    aliases[name_as(node, target)] = target
                elif name.startswith("_") and ours(target) and ours(target) != module:
                    found.append(f"{module}:{line} imports {target}.{name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = ast.unparse(node.value)
            if base in aliases and aliases[base] != module:
                found.append(f"{module}:{node.lineno} uses {aliases[base]}.{node.attr}")
    return found


def imports_of(module: str, node: ast.ImportFrom) -> list[tuple[str, str | None, int]]:
    """A module named in `from x import module` counts as imported itself."""
    source = resolve(module, node)
    return [(f"{source}.{a.name}", None, node.lineno) if f"{source}.{a.name}" in MODULES
            else (source, a.name, node.lineno) for a in node.names]


def name_as(node: ast.ImportFrom, target: str) -> str:
    for alias in node.names:
        if target.endswith("." + alias.name):
            return alias.asname or alias.name
    return target


def test_no_module_uses_another_modules_private_names():
    assert [u for m in MODULES for u in private_uses(m)] == []


def test_the_private_name_check_finds_one(tmp_path, monkeypatch):
    bad = PACKAGE / "batch" / "engine.py"
    source = bad.read_text(encoding="utf-8") + "\nfrom qa_pipeline.batch.store import _utterance\n" \
        "from qa_pipeline.batch import plan\nplan._digest\n"
    copy = tmp_path / "engine.py"
    copy.write_text(source, encoding="utf-8")
    monkeypatch.setitem(MODULES, "qa_pipeline.batch.engine", copy)
    uses = private_uses("qa_pipeline.batch.engine")
    assert any("imports qa_pipeline.batch.store._utterance" in u for u in uses)
    assert any("uses qa_pipeline.batch.plan._digest" in u for u in uses)


def test_every_package_folder_is_installed():
    """setuptools' `packages` list is explicit: a folder left out is missing from a wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert folders <= listed, f"not in pyproject's packages: {sorted(folders - listed)}"
    for package in listed:
        folder = ROOT / config.get("package-dir", {}).get(package, package.replace(".", "/"))
        assert folder.is_dir(), package


def test_the_readme_names_every_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"([\w/]+\.py)", section))
    missing = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if p.name != "__init__.py" and p.name not in named and str(p.relative_to(PACKAGE)) not in named]
    assert missing == []
