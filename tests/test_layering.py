"""Import structure of ``src/embedlab`` (ARCHITECTURE.md, "Target layout"), read with ``ast``.

Every ``import`` / ``from ... import`` of an embedlab module is an edge of one of three kinds:

* ``module``: executed when the importing module is imported (runtime edges);
* ``lazy``: inside a function body, executed when the function runs;
* ``typing``: under ``if TYPE_CHECKING:``, never executed.

Checks: (a) no cycle among runtime edges; (b) every lazy or typing-only import is listed in
:data:`DEFERRED` with its reason, and one that closes a cycle only where that entry says so;
(c) the layering rules of :data:`FORBIDDEN` over all three kinds. One parse of each file, no
imports of the package itself: the test runs in well under a second.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "embedlab"

Kind = Literal["module", "lazy", "typing"]


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, e.g. "embedlab.kge.model"
    target: str  # imported module (a submodule when ``from pkg import submodule``)
    kind: Kind
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.kind}, line {self.line})"


@dataclass(frozen=True)
class Deferred:
    """A lazy or typing-only import kept on purpose."""

    reason: str
    closes_cycle: bool = False  # True: it would be a cycle at module level (must say why)


# (importing module, imported module) -> why the import is not at module level.
DEFERRED: dict[tuple[str, str], Deferred] = {
    ("embedlab", "embedlab.runs"): Deferred(
        "embedlab.load_run only (and its annotation): `import embedlab` stays light, without "
        "torch and the task packages"
    ),
    ("embedlab.losses.kl", "embedlab.plots"): Deferred(
        "figure2 only: matplotlib (imported by plots) is not loaded to compute a KL"
    ),
    ("embedlab.losses.theory", "embedlab.plots"): Deferred(
        "figure1 only: matplotlib (imported by plots) is not loaded to compute distributions"
    ),
    ("embedlab.training.callbacks", "embedlab.training.loop"): Deferred(
        "annotation only: a Callback's hooks receive the Loop that calls them",
        closes_cycle=True,
    ),
}

# Layers: the first path component under embedlab/ (``errors``, ``plots``: single modules).
TASKS = {"kge", "recsys", "lm", "nmt", "gcn"}
ABOVE_SHARED = TASKS | {"training", "tune", "cli"}
# importing layer -> the only other layers it may import (bottom of ARCHITECTURE.md's picture)
# ``distributed`` (process group, rank, collectives) sits beside ``errors``: evaluation, which
# must not import the trainer, splits its queries across ranks with it
# ``compiling`` (torch.compile with an eager fallback) imports nothing of embedlab: losses,
# evaluation and the KGE kernels share it
ONLY: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors"},
    "distributed": {"errors"},
    "compiling": set(),
}
# importing layer -> layers it must not import (data -> embedding layer -> model -> loss;
# the trainer and evaluation serve every task; cli on top)
FORBIDDEN: dict[str, set[str]] = {
    "embeddings": ABOVE_SHARED,
    "losses": ABOVE_SHARED,
    "datasets": ABOVE_SHARED,
    "evaluation": ABOVE_SHARED,
    "training": ABOVE_SHARED - {"training"},
}
CLI_IMPORTERS = {"cli", "__main__"}  # nothing else imports cli


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, source: str, modules: dict[str, Path]) -> list[str]:
    """Embedlab modules named by one import statement (``from pkg import sub``: ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the module's package, one level up per extra dot
            is_package = modules[source].name == "__init__.py"
            anchor = source if is_package else source.rpartition(".")[0]
            for _ in range(node.level - 1):
                anchor = anchor.rpartition(".")[0]
            base = f"{anchor}.{base}" if base else anchor
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    return sorted({n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")})


def _edges(modules: dict[str, Path]) -> list[Edge]:
    edges: list[Edge] = []

    def visit(node: ast.AST, source: str, kind: Kind) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                visit(ast.Module(body=child.body, type_ignores=[]), source, "typing")
                visit(ast.Module(body=child.orelse, type_ignores=[]), source, kind)
                continue
            child_kind = kind
            if kind == "module" and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                child_kind = "lazy"
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _targets(child, source, modules):
                    edges.append(Edge(source, target, child_kind, child.lineno))
            visit(child, source, child_kind)

    for name, path in modules.items():
        visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), name, "module")
    return edges


MODULES = _modules()
EDGES = _edges(MODULES)


def _graph(edges: list[Edge]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in edges:
        if e.target != e.source:
            graph[e.source].add(e.target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for nxt in graph[node] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return False


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_is_parsed_and_imports_resolve() -> None:
    assert "embedlab.kge.model" in MODULES and "embedlab.losses" in MODULES
    unknown = [str(e) for e in EDGES if e.target not in MODULES]
    assert not unknown, "imports of embedlab modules that do not exist:\n" + "\n".join(unknown)


def test_no_cycles_among_module_level_imports() -> None:
    cycles = _cycles(_graph([e for e in EDGES if e.kind == "module"]))
    assert not cycles, "import cycles (module level):\n" + "\n".join(map(" <-> ".join, cycles))


def test_no_cycles_among_layers() -> None:
    """Packages too (``kge`` <-> ``evaluation`` had no module cycle, but a package one)."""
    layers: dict[str, set[str]] = {}
    for e in EDGES:
        if e.kind == "module":
            layers.setdefault(_layer(e.source), set()).add(_layer(e.target))
            layers.setdefault(_layer(e.target), set())
    for layer, targets in layers.items():
        targets.discard(layer)
    cycles = _cycles(layers)
    assert not cycles, "import cycles between packages:\n" + "\n".join(map(" <-> ".join, cycles))


def test_deferred_imports_are_listed_and_do_not_dodge_cycles() -> None:
    deferred = [e for e in EDGES if e.kind != "module" and e.source != e.target]
    unlisted = [str(e) for e in deferred if (e.source, e.target) not in DEFERRED]
    assert not unlisted, (
        "function-level or TYPE_CHECKING imports of embedlab modules must be at module level, "
        "or be listed in DEFERRED with their reason:\n" + "\n".join(unlisted)
    )
    present = {(e.source, e.target) for e in deferred}
    stale = [f"{s} -> {t}" for s, t in DEFERRED if (s, t) not in present]
    assert not stale, "DEFERRED entries whose import is gone (delete them):\n" + "\n".join(stale)
    # an import closes a cycle if its target already reaches its source through the other edges
    full = _graph(EDGES)
    dodging = []
    for e in deferred:
        rest = {k: set(v) for k, v in full.items()}
        rest[e.source].discard(e.target)
        if _reaches(rest, e.target, e.source) != DEFERRED[(e.source, e.target)].closes_cycle:
            dodging.append(str(e))
    assert not dodging, (
        "deferred imports whose closes_cycle flag is wrong (a lazy import that avoids a cycle "
        "hides a layering problem: move the shared code down instead):\n" + "\n".join(dodging)
    )


def test_layering_of_architecture_md() -> None:
    bad = []
    for e in EDGES:
        source, target = _layer(e.source), _layer(e.target)
        if source == target:
            continue
        only = ONLY.get(source)
        if (
            (only is not None and target not in only)
            or target in FORBIDDEN.get(source, set())
            or (target == "cli" and source not in CLI_IMPORTERS)
        ):
            bad.append(str(e))
    assert not bad, "imports across layers that ARCHITECTURE.md forbids:\n" + "\n".join(bad)
