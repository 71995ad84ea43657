"""Device safety of the packages that run on the ``device`` key's device, checked on a CPU.

Two checks, both fast and both on the CPU (the task cases also run on real CUDA where present,
marked ``device``):

1. A static scan: every ``torch.<factory>(...)`` call in the device-facing packages passes
   ``device=`` (or is listed in :data:`ALLOWED` with a reason). ``*_like`` and ``Tensor.new_*``
   follow their input and are not factory calls here.
2. A runtime check: :class:`DeviceTracker` (a ``TorchFunctionMode``) simulates a second device on
   the CPU. Model parameters and buffers, tensors moved by ``.to(device)`` / ``.cuda()`` and
   tensors created with ``device=<a device tensor>.device`` are "device"; everything else (data
   as loaded, factory calls without ``device=``, ``.cpu()``) is "host". An op that meets both
   (other than host 0-dim scalars, which CUDA accepts), a host tensor indexing a device tensor
   (an implicit copy and sync), and a generator drawing device tensors (the loop's generators are
   CPU generators) are recorded. One training step and one validation of every task run under it.
"""

from __future__ import annotations

import ast
import itertools
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from tests.conftest import write_kg

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = ("kge", "evaluation", "losses", "embeddings", "recsys", "lm")
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


# -- 2. runtime check ----------------------------------------------------------------------------

HOST, DEVICE = "host", "device"
_MIXED_OK = {"to", "cpu", "cuda", "copy_", "_has_compatible_shallow_copy_type"}  # by design
_INDEXING = {"__getitem__", "__setitem__", "index_put_", "index_put"}


def _name(func: Callable[..., Any]) -> str:
    if getattr(func, "__name__", "") in {"__get__", "__set__"}:
        owner = getattr(func, "__self__", None)
        return f"{getattr(owner, '__name__', '?')}.{func.__name__}"
    return getattr(func, "__name__", repr(func))


class DeviceTracker(TorchFunctionMode):
    """Simulates host vs device placement on the CPU (see the module docstring).

    ``device`` objects read from a tensor's ``.device`` remember that tensor's side; any other
    ``torch.device`` (the run's ``resolve_device``) or device string other than ``"cpu"`` means
    the device. ``problems``: what would fail (or copy implicitly) on a CUDA device;
    ``device_ops``: ops that produced device tensors (a run that checked nothing has none).
    """

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.device_ops = 0
        self._tags = WeakIdKeyDictionary()  # tensor -> DEVICE; absent: HOST
        self._devices: dict[int, tuple[torch.device, str]] = {}  # id -> (object, side)

    def __enter__(self) -> DeviceTracker:
        """Also follow ``nn.Parameter(t)`` (its ``__new__`` is no torch function)."""
        new = self._parameter_new = torch.nn.Parameter.__new__

        def parameter(
            cls: type, data: torch.Tensor | None = None, requires_grad: bool = True
        ) -> Any:
            out: torch.Tensor = new(cls, data, requires_grad)
            if data is not None and self.side(data) == DEVICE:
                self._tags[out] = DEVICE
            return out

        torch.nn.Parameter.__new__ = parameter  # type: ignore[method-assign]
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        torch.nn.Parameter.__new__ = self._parameter_new  # type: ignore[method-assign]
        super().__exit__(*exc)

    def place(self, *tensors: torch.Tensor) -> None:
        """Mark ``tensors`` as living on the device."""
        for t in tensors:
            self._tags[t] = DEVICE

    def place_module(self, module: torch.nn.Module) -> None:
        """What ``module.to(device)`` moved: its parameters and buffers."""
        self.place(*module.parameters(), *module.buffers())

    def side(self, t: torch.Tensor) -> str:
        return self._tags.get(t, HOST)

    def _device_side(self, device: object) -> str:
        if isinstance(device, torch.device):
            known = self._devices.get(id(device))
            return known[1] if known is not None and known[0] is device else DEVICE
        if isinstance(device, torch.Tensor):
            return self.side(device)
        if isinstance(device, str):
            return HOST if device.startswith("cpu") else DEVICE
        return DEVICE  # an int: a CUDA ordinal

    def _target_side(self, name: str, args: tuple, kwargs: dict) -> str | None:
        """The side an explicit placement asks for; None where the op names none."""
        if name == "cpu":
            return HOST
        if name == "cuda":
            return DEVICE
        if kwargs.get("device") is not None:
            return self._device_side(kwargs["device"])
        if name == "to":
            for a in args[1:]:
                if isinstance(a, torch.device | str | torch.Tensor):
                    return self._device_side(a)
        return None

    def _report(self, name: str, message: str) -> None:
        stack = traceback.extract_stack()[:-3]
        ours = [f for f in stack if "/src/embedlab/" in f.filename] or stack
        where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}"
        self.problems.append(f"{where} {name}: {message}")

    def _check(self, name: str, args: tuple, tensors: list[torch.Tensor]) -> None:
        if name in _MIXED_OK or name.endswith(("__get__", "__set__")):
            return
        if name in _INDEXING and args and isinstance(args[0], torch.Tensor):
            target, rest = self.side(args[0]), tensors[1:]
            if target == DEVICE and any(self.side(t) == HOST and t.dim() > 0 for t in rest):
                self._report(name, "host index or value into a device tensor")
            if target == HOST and any(self.side(t) == DEVICE for t in rest):
                self._report(name, "device index or value into a host tensor")
            return
        sides = {self.side(t) for t in tensors if t.dim() > 0 or self.side(t) == DEVICE}
        if len(sides) > 1:
            shapes = [(tuple(t.shape), self.side(t)) for t in tensors]
            self._report(name, f"host and device tensors meet: {shapes}")

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        name = _name(func)
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        self._check(name, args, tensors)
        out = func(*args, **kwargs)
        if name == "data.__set__":  # `param.data = t` (Module.to): the parameter moves with t
            self._tags.pop(args[0], None)
            if self.side(args[1]) == DEVICE:
                self._tags[args[0]] = DEVICE
            return out
        if name == "device.__get__":
            out = torch.device(out.type, out.index)  # a fresh object to remember
            self._devices[id(out)] = (out, self.side(args[0]))
            return out
        side = self._target_side(name, args, kwargs)
        if side is None and args and out is args[0] and isinstance(out, torch.Tensor):
            side = self.side(out)  # in place (copy_, add_, ...): self stays where it is
        if side is None:
            side = DEVICE if any(self.side(t) == DEVICE for t in tensors) else HOST
        if side == DEVICE:
            self.device_ops += 1
            generator = kwargs.get("generator")
            if generator is not None and generator.device.type == "cpu":
                self._report(name, f"a {generator.device} generator draws on the device")
            if name in {"to", "cuda"} and out is args[0] and self.side(out) == HOST:
                out = out.clone()  # a no-op move on the CPU: tag a copy, not the original
            for leaf in tree_flatten(out)[0]:
                if isinstance(leaf, torch.Tensor):
                    self._tags[leaf] = DEVICE
        elif name == "cpu" and out is args[0] and self.side(out) == DEVICE:
            out = out.clone()  # an untagged copy: host
        return out


def test_tracker_flags_mixing() -> None:
    device = torch.device("cpu")  # the run's device
    weight = torch.randn(5, 3)
    with DeviceTracker() as tracker:
        tracker.place(weight)
        data = torch.arange(5).to(device)  # moved: device
        weight[data] + weight[torch.arange(2, device=data.device)].sum()  # fine
        weight.sum() + torch.tensor(1.0)  # a host 0-dim scalar: CUDA accepts it
        weight.cpu() @ torch.ones(3)  # explicitly on the host: fine
        weight[torch.arange(2)]  # 1: host index into a device tensor
        torch.searchsorted(torch.arange(5), data)  # 2: host meets device
        torch.rand(3, device=data.device, generator=torch.Generator())  # 3: CPU generator
    assert [p.split(": ")[1] for p in tracker.problems] == [
        "host index or value into a device tensor",
        "host and device tensors meet",
        "a cpu generator draws on the device",
    ], tracker.problems


def _summary(tracker: DeviceTracker) -> str:
    counts = Counter(tracker.problems)
    return "device mixing (would fail or copy on CUDA):\n" + "\n".join(
        f"  {n}x {p}" for p, n in counts.items()
    )


# -- the tasks under the tracker -------------------------------------------------------------------


@pytest.fixture(
    params=[
        "cpu",
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.device,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
            ],
        ),
    ]
)
def device(request: pytest.FixtureRequest) -> torch.device:
    """The run's device: the CPU (device placement simulated) or, where present, real CUDA."""
    return torch.device(request.param)


def _one_step(task: Any, tracker: DeviceTracker) -> None:
    """What the loop does with a task: one training step with backward, then validation."""
    generator = torch.Generator().manual_seed(0)
    batch = next(iter(task.batches(generator)))
    step = task.train_step(batch)
    if step.loss.requires_grad:
        step.loss.float().backward()
    task.validate()
    assert tracker.device_ops > 0


KGE_CASES = {
    "1vsAll-sce-complex": ["train.type=1vsAll", "loss.name=sce"],
    "1vsAll-sce_bc-distmult": ["train.type=1vsAll", "loss.name=sce_bc", "model.name=distmult"],
    "1vsAll-ns_freq-tucker": ["train.type=1vsAll", "loss.name=ns_freq", "model.name=tucker"],
    "KvsAll-sce_ls": ["train.type=KvsAll", "loss.name=sce_ls", "loss.label_smoothing=0.1"],
    "KvsAll-ns_freq": ["train.type=KvsAll", "loss.name=ns_freq"],
    "NS-uniform-filtered": [
        "train.type=negative_sampling", "loss.name=ns", "train.negatives.filter=true",
        "train.negatives.tail=20", "train.negatives.head=20",
    ],
    "NS-freq-sampled-filtered": [
        "train.type=negative_sampling", "loss.name=ns_freq", "loss.freq_reading=sampled",
        "train.negatives.filter=true", "train.negatives.tail=20", "train.negatives.head=20",
    ],
    "NS-freq-weighted": [
        "train.type=negative_sampling", "loss.name=ns_freq", "loss.freq_reading=weighted",
    ],
    "NS-sans-rotate": ["train.type=negative_sampling", "loss.name=sans", "model.name=rotate"],
    "sse-graph-dropout": [
        "entity_embedding.sse.kind=graph", "entity_embedding.sse.p=0.5",
        "relation_embedding.sse.kind=se", "relation_embedding.sse.p=0.5",
        "entity_embedding.dropout=0.2", "entity_embedding.regularize.kind=n3",
        "entity_embedding.regularize.weight=0.01",
    ],
    "kd-codes": [
        "entity_embedding.kind=kd", "entity_embedding.kd.relaxation=gumbel",
        "entity_embedding.kd.guidance=online", "entity_embedding.kd.entropy_weight=0.01",
    ],
}  # fmt: skip


@pytest.mark.parametrize("over", KGE_CASES.values(), ids=KGE_CASES.keys())
def test_kge_step_and_validation_stay_on_the_device(
    tmp_path: Path, over: list[str], device: torch.device
) -> None:
    from embedlab.datasets.kg import load_kg
    from embedlab.evaluation.kge_eval import known_answers
    from embedlab.kge.run import build_model
    from embedlab.kge.training_types import build_task
    from tests.conftest import fast_config

    config = fast_config(
        str(write_kg(tmp_path / "kg", entities=30, n=200)), **dict(o.split("=", 1) for o in over)
    )
    dataset = load_kg(config.dataset)
    torch.manual_seed(0)
    model = build_model(config, dataset).to(device)
    with DeviceTracker() as tracker:
        tracker.place_module(model)
        known = known_answers(dataset.all_triples().to(device), dataset.num_relations)
        task = build_task(model=model, dataset=dataset, known=known, config=config)
        _one_step(task, tracker)
    assert not tracker.problems, _summary(tracker)


def _ratings_dir(folder: Path) -> Path:
    """30 users x 20 items, ~60% observed, ratings 1..5; 80/20 train/test."""
    g = torch.Generator().manual_seed(0)
    folder.mkdir()
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for u, i in itertools.product(range(30), range(20)):
        if torch.rand((), generator=g) < 0.6:
            split = "test" if torch.rand((), generator=g) < 0.2 else "train"
            lines[split].append(f"u{u}\ti{i}\t{int(torch.randint(1, 6, (), generator=g))}")
    for split, rows in lines.items():
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def _ring(n: int) -> Any:
    from embedlab.embeddings.graph import RowGraph

    rows = torch.arange(n)
    return RowGraph.from_edges(num_rows=n, src=rows, dst=(rows + 1) % n)


MF_CASES = {
    "sgd-sse-graph-dropout-lp3": [
        "user_embedding.sse.kind=graph", "user_embedding.sse.p=0.5", "item_embedding.sse.kind=se",
        "item_embedding.sse.p=0.5", "item_embedding.dropout=0.2",
        "user_embedding.regularize.kind=lp", "user_embedding.regularize.p=3",
        "user_embedding.regularize.weight=0.01", "item_embedding.regularize.kind=n3",
        "item_embedding.regularize.weight=0.01", "item_embedding.regularize.weighted=false",
    ],
    "als-l2": [
        "train.method=als", "user_embedding.regularize.kind=lp",
        "user_embedding.regularize.weight=0.01",
    ],
    "grals": ["train.method=grals", "train.laplacian.user=0.5", "train.laplacian.item=0.5"],
}  # fmt: skip


@pytest.mark.parametrize("over", MF_CASES.values(), ids=MF_CASES.keys())
def test_mf_epoch_and_validation_stay_on_the_device(
    tmp_path: Path, over: list[str], device: torch.device
) -> None:
    from embedlab.config.io import build_typed_config
    from embedlab.recsys.config import MfConfig
    from embedlab.recsys.model import MatrixFactorization
    from embedlab.recsys.run import load_mf_dataset
    from embedlab.recsys.task import MfTask

    base = [f"dataset={_ratings_dir(tmp_path / 'ratings')}", "model.dim=4", "train.batch_size=64"]
    config = build_typed_config(MfConfig, overrides=[*base, "data.valid_fraction=0.1", *over])
    dataset = load_mf_dataset(config)
    torch.manual_seed(0)
    users, items = dataset.num_users, dataset.num_items
    sse_graph = config.user_embedding.sse.kind == "graph"  # the run's graphs need a named dataset
    model = MatrixFactorization(
        num_users=users,
        num_items=items,
        config=config,
        user_graph=_ring(users) if sse_graph else None,
    )
    model.mean.fill_(float(dataset.splits["train"].ratings.double().mean()))
    model.to(device)
    lap = config.train.laplacian
    with DeviceTracker() as tracker:
        tracker.place_module(model)
        laplacians = tuple(
            (_ring(n).laplacian().to(device), w) if w else None
            for n, w in ((users, lap.user), (items, lap.item))
        )
        task = MfTask(model=model, dataset=dataset, config=config, laplacians=laplacians)
        _one_step(task, tracker)
    assert not tracker.problems, _summary(tracker)


LM_CASES = {
    "lookup-sse-untied": [
        "token_embedding.sse.kind=se", "token_embedding.sse.p=0.3", "output_embedding.sse.kind=se",
        "output_embedding.sse.p=0.3", "token_embedding.dropout=0.1",
        "token_embedding.regularize.kind=lp", "token_embedding.regularize.weight=0.01",
    ],
    "kd-tied": ["model.tie_weights=true", "token_embedding.kind=kd", "model.layers=2"],
}  # fmt: skip


@pytest.mark.parametrize("over", LM_CASES.values(), ids=LM_CASES.keys())
def test_lm_window_and_validation_stay_on_the_device(
    tmp_path: Path, over: list[str], device: torch.device
) -> None:
    from embedlab.config.io import build_typed_config
    from embedlab.datasets.tokens import load_corpus
    from embedlab.lm.config import LmConfig
    from embedlab.lm.load import build_lm_model
    from embedlab.lm.task import LmTask
    from tests.lm.test_lm_run import FAST, write_tiny_corpus

    data = write_tiny_corpus(tmp_path / "corpus", lines=40)
    config = build_typed_config(LmConfig, overrides=[f"dataset={data}", *FAST, *over])
    corpus = load_corpus(config.dataset)
    torch.manual_seed(0)
    model = build_lm_model(config, corpus, with_teachers=False).to(device)
    with DeviceTracker() as tracker:
        tracker.place_module(model)
        _one_step(LmTask(model=model, corpus=corpus, config=config), tracker)
    assert not tracker.problems, _summary(tracker)


def test_analysis_and_export_follow_their_inputs(device: torch.device) -> None:
    """KL of splits, PCA, graphs from device labels, KD export and bit packing."""
    from embedlab.config.io import build_typed_config
    from embedlab.embeddings.config import EmbeddingConfig
    from embedlab.embeddings.graph import RowGraph
    from embedlab.embeddings.kd import KdEmbedding
    from embedlab.embeddings.kd_compact import export_kd, pack_codes, unpack_codes
    from embedlab.losses.kl import kl_train_test
    from embedlab.recsys.projection import pca_3d

    g = torch.Generator().manual_seed(0)
    train, test = (torch.randint(0, 8, (n, 3), generator=g) for n in (60, 20))
    table = torch.randn(10, 5, generator=g)
    labels = torch.tensor([0, 0, 1, -1, 1, 2, 2, 2, -1, 0])
    config = build_typed_config(EmbeddingConfig, overrides=["kind=kd", "kd.K=4", "kd.D=3"])
    layer = KdEmbedding(num_rows=10, dim=6, config=config).eval().to(device)
    with DeviceTracker() as tracker:
        tracker.place_module(layer)
        train, test, table, labels = (t.to(device) for t in (train, test, table, labels))
        kl_train_test(train, test, num_entities=8)
        pca_3d(table)
        graph = RowGraph.from_groups(labels)
        graph.laplacian()
        graph.edge_keys()
        compact = export_kd(layer)
        rows = torch.arange(10, device=table.device)
        compact(rows)
        compact.fast_linear()(rows)
        codes = layer.codes()
        unpack_codes(pack_codes(codes, 2), 2, tuple(codes.shape))
    assert tracker.device_ops > 0
    assert not tracker.problems, _summary(tracker)
