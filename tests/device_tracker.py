"""The host/device tracker behind tests/test_device_mixing.py (imported, not collected).

:class:`DeviceTracker` (a ``TorchFunctionMode``) simulates a second device on the CPU. Model
parameters and buffers, tensors moved by ``.to(device)`` / ``.cuda()`` and tensors created with
``device=<a device tensor>.device`` are "device"; everything else (data as loaded, factory calls
without ``device=``, ``.cpu()``) is "host". An op that meets both (other than host 0-dim scalars,
which CUDA accepts), a host tensor indexing a device tensor (an implicit copy and sync), and a
generator drawing device tensors (the loop's generators are CPU generators) are recorded.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

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


def summary(tracker: DeviceTracker) -> str:
    counts = Counter(tracker.problems)
    return "device mixing (would fail or copy on CUDA):\n" + "\n".join(
        f"  {n}x {p}" for p, n in counts.items()
    )


def one_step(task: Any, tracker: DeviceTracker) -> None:
    """What the loop does with a task: one training step with backward, then validation."""
    generator = torch.Generator().manual_seed(0)
    batch = next(iter(task.batches(generator)))
    step = task.train_step(batch)
    if step.loss.requires_grad:
        step.loss.float().backward()
    task.validate()
    assert tracker.device_ops > 0
