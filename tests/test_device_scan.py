"""Device safety, part 1: a static scan of the packages that run on the ``device`` key's device.

Every ``torch.<factory>(...)`` call in the device-facing packages passes ``device=`` (or is listed
in :data:`ALLOWED` with a reason). ``*_like`` and ``Tensor.new_*`` follow their input and are not
factory calls here. Part 2 (a runtime check of every task on the CPU) is
``tests/test_device_mixing.py``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = ("kge", "evaluation", "losses", "embeddings", "recsys", "lm", "gcn")
FACTORIES = frozenset(
    {"arange", "zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm"}
    | {"tensor", "linspace", "eye"}
)

_MODULE = "parameter or buffer of an nn.Module built on the CPU; Module.to(device) moves it"
_SHUFFLE = "the loop's shuffling generator is a CPU generator; the permutation is moved next"
_GRAPHS = "graph construction from numpy at data-loading time; run.py moves the Laplacian"

ALLOWED: dict[tuple[str, str, str], str] = {
    # (module, function qualname, factory): reason
    ("embedlab.kge.interactions.tucker", "TuckER.__init__", "empty"): _MODULE,
    ("embedlab.embeddings.kd", "KdEmbedding.__init__", "zeros"): _MODULE,
    ("embedlab.embeddings.kd", "KdEmbedding.__init__", "randn"): _MODULE,
    ("embedlab.embeddings.kd", "KdEmbedding.__init__", "empty"): _MODULE,
    ("embedlab.embeddings.kd", "KdEmbedding.__init__", "tensor"): _MODULE,
    ("embedlab.embeddings.lookup", "EmbeddingTable.__init__", "empty"): _MODULE,
    ("embedlab.embeddings.sse", "SseIndexTransform.__init__", "zeros"): _MODULE,
    ("embedlab.recsys.model", "MatrixFactorization.__init__", "zeros"): _MODULE,
    ("embedlab.lm.model", "LstmLm.__init__", "empty"): _MODULE,
    ("embedlab.lm.model", "LstmLm.__init__", "arange"): _MODULE,
    ("embedlab.kge.task", "KgeTask.batches", "randperm"): _SHUFFLE,
    ("embedlab.kge.kvs_all", "KvsAllTask.batches", "randperm"): _SHUFFLE,
    ("embedlab.embeddings.kd_distill", "distill_to_teacher", "randperm"): _SHUFFLE,
    ("embedlab.recsys.sgd", "sgd_epoch", "randperm"): _SHUFFLE,
    ("embedlab.recsys.sgd", "_parallel_epoch", "randperm"): _SHUFFLE,
    ("embedlab.recsys.graphs", "item_labels", "full"): _GRAPHS,
    ("embedlab.recsys.graphs", "cliques", "zeros"): _GRAPHS,
    ("embedlab.recsys.graphs", "_groups_graph", "full"): _GRAPHS,
    ("embedlab.recsys.graphs", "_groups_graph", "tensor"): _GRAPHS,
    ("embedlab.recsys.task", "MfTask.train_step", "tensor"): (
        "the logged epoch loss, a Python float; no backward, meets no device tensor"
    ),
    ("embedlab.losses.theory", "figure1", "linspace"): "paper figure, plotted from numpy",
}


# -- 1. static scan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FactoryCall:
    module: str
    function: str
    factory: str
    line: int

    @property
    def key(self) -> tuple[str, str, str]:
        return self.module, self.function, self.factory


class _Scanner(ast.NodeVisitor):
    """Factory calls without ``device=`` of one module (``torch`` under any import alias)."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.scope: list[str] = []
        self.torch_names = {"torch"}
        self.found: list[FactoryCall] = []

    def _record(self, node: ast.Call | ast.ImportFrom, factory: str) -> None:
        function = ".".join(self.scope) or "<module>"
        self.found.append(FactoryCall(self.module, function, factory, node.lineno))

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_Import(self, node: ast.Import) -> None:
        self.torch_names |= {a.asname for a in node.names if a.name == "torch" and a.asname}

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "torch":  # a bare `zeros(...)` would escape the scan: refuse the import
            for alias in node.names:
                if alias.name in FACTORIES:
                    self._record(node, alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in self.torch_names
            and func.attr in FACTORIES
            and not any(k.arg == "device" for k in node.keywords)
        ):
            self._record(node, func.attr)
        self.generic_visit(node)


def factory_calls_without_device() -> list[FactoryCall]:
    found: list[FactoryCall] = []
    for package in PACKAGES:
        for path in sorted((SRC / "embedlab" / package).rglob("*.py")):
            module = ".".join(path.relative_to(SRC).with_suffix("").parts)
            scanner = _Scanner(module)
            scanner.visit(ast.parse(path.read_text(encoding="utf-8")))
            found += scanner.found
    return found


def test_factory_calls_pass_a_device() -> None:
    bad = [c for c in factory_calls_without_device() if c.key not in ALLOWED]
    assert not bad, (
        "torch factory calls without device= (pass device=<input>.device):\n"
        + "\n".join(f"  {c.module}:{c.line} {c.function}: torch.{c.factory}" for c in bad)
    )


def test_allow_list_has_no_stale_entries() -> None:
    used = {c.key for c in factory_calls_without_device()}
    stale = sorted(set(ALLOWED) - used)
    assert not stale, f"allow-list entries that match no call any more: {stale}"


def test_scanner_catches_the_patterns() -> None:
    source = (
        "import torch as T\nfrom torch import zeros\n"
        "def f(x):\n    a = T.arange(3)\n    b = T.ones(2, device=x.device)\n"
        "    return x.new_zeros(2), torch.zeros_like(x), a, b\n"
    )
    scanner = _Scanner("m")
    scanner.visit(ast.parse(source))
    assert [(c.function, c.factory, c.line) for c in scanner.found] == [
        ("<module>", "zeros", 2),
        ("f", "arange", 4),
    ]
