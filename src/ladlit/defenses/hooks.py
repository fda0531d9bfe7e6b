"""Hook mechanics of the layer-wise defense, kept apart from its algorithm.

Each residual block gets two hooks, installed once and kept for the model's life: a forward-pre
hook at its input ("in") and a forward hook at its output ("out"). They are installed before the
model is first called, so a `torch.compile`d model traces them into its graph (hooks added after
compilation would be skipped). Outside a pass that `AdjointInjector.forward` runs they do
nothing, so validation, evaluation and every other call see the plain network.

In such a pass a hook adds its point's *addend* to the state: the perturbation p where one is
injected, a zero tensor where only the adjoint is wanted. The adjoints are the gradients of the
loss with respect to these addends: adding a tensor does not change a gradient, so
dL/d(addend) = dL/dz, the adjoint of the state z. The addends are inputs of the traced graph, so
new values each step do not recompile it, and no Python callback has to run inside the backward
pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

Point = Literal["in", "out"]  # the two ends of a residual block, where states are read and perturbed
POINTS: tuple[Point, Point] = ("in", "out")


@dataclass
class BlockState:
    """One block's two ends: z (hidden state in the last capturing pass, detached), a (its adjoint
    dL/dz), p (the perturbation injected there), addend (what the hook adds in the current pass)."""

    z: dict[Point, Tensor] = field(default_factory=dict)
    a: dict[Point, Tensor] = field(default_factory=dict)
    p: dict[Point, Tensor] = field(default_factory=dict)
    addend: dict[Point, Tensor] = field(default_factory=dict)

    @property
    def transition(self) -> bool:
        """True for a block that changes the state's shape (stride-2 / projection blocks)."""
        return "in" in self.z and "out" in self.z and self.z["in"].shape != self.z["out"].shape


class _PointHook:
    """The hook at one end of one block (a class, not a closure: a model with hooks still pickles
    and deep-copies, the copy's hooks then serving the copy's own injector)."""

    def __init__(self, injector: AdjointInjector, index: int, point: Point) -> None:
        self.injector, self.index, self.point = injector, index, point

    def __call__(self, module: nn.Module, args: tuple[Any, ...], out: Tensor | None = None) -> Any:
        if not self.injector.active:
            return None  # the block's input / output unchanged
        if self.point == "in":
            return (self.injector.visit(self.index, "in", args[0]), *args[1:])
        return self.injector.visit(self.index, "out", out)


class AdjointInjector:
    """The hooks on `blocks` and what they add and read; `forward` runs the model through them."""

    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        self.blocks = list(blocks)
        self.states = [BlockState() for _ in self.blocks]
        self.active = False  # inside a pass run by `forward`
        self.capture = False  # that pass records the states z
        self._leaves: list[tuple[BlockState, Point, Tensor]] = []
        self._example_shape: tuple[int, ...] | None = None  # the input shape the states' shapes were recorded for
        self._handles: list[RemovableHandle] = []
        for i, block in enumerate(self.blocks):
            self._handles.append(block.register_forward_pre_hook(_PointHook(self, i, "in")))
            self._handles.append(block.register_forward_hook(_PointHook(self, i, "out")))

    def close(self) -> None:
        """Remove the hooks (tools that hook a model for one job: `contextlib.closing`)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def reset(self) -> None:
        """A new batch: nothing injected, no adjoints (the states' shapes are kept)."""
        for state in self.states:
            for values in (state.p, state.a, state.addend):
                values.clear()
        self._leaves.clear()

    def __getstate__(self) -> dict:
        """Pickled (DDP spawn, launchers) without the last batch's tensors."""
        return {
            **self.__dict__,
            "states": [BlockState() for _ in self.states],
            "_leaves": [],
            "_example_shape": None,
            "active": False,
        }

    def forward(self, model: nn.Module, capture: bool, inject: bool) -> Callable[[Tensor], Tensor]:
        """`model` as a function of its input whose passes add p where `inject` and, where
        `capture`, make every point's addend a leaf whose gradient `receive` takes as the
        adjoint (zero where nothing is injected) and record every state z."""

        def run(x: Tensor) -> Tensor:
            if capture and self._shapes_unknown(x):
                self._record_shapes(model, x)
            self._leaves.clear()
            for state in self.states:
                for point in POINTS:
                    p = state.p.get(point) if inject else None
                    if capture:
                        z = state.z[point]
                        addend = _zeros_like_rows(z, len(x)) if p is None else _laid_out_like(p.detach(), z)
                        state.addend[point] = addend.requires_grad_(True)
                        self._leaves.append((state, point, state.addend[point]))
                    elif p is not None:
                        state.addend[point] = _laid_out_like(p, state.z[point])
                    else:
                        state.addend.pop(point, None)
            with self._switched(active=True, capture=capture):
                return model(x)

        return run

    def leaves(self) -> list[Tensor]:
        """The last capturing pass's addends, whose gradients are the adjoints."""
        return [leaf for _, _, leaf in self._leaves]

    def receive(self, grads: Sequence[Tensor | None]) -> None:
        """Take the gradients with respect to `leaves()` as the adjoints a."""
        if self._leaves and all(grad is None for grad in grads):
            raise RuntimeError(
                "the loss does not depend on any hidden-state addend: the layer-wise defense's hooks did not run. "
                "A model compiled and called before the defense hooked it keeps its hook-free graph; "
                "let the defense see the model first (defense.check_model(model), as AdversarialTraining does), then compile it"
            )
        for (state, point, _), grad in zip(self._leaves, grads):
            if grad is not None:
                state.a[point] = grad

    def visit(self, index: int, point: Point, x: Tensor) -> Tensor:
        """The state x at one end of a block, plus that point's addend; recorded when capturing."""
        state = self.states[index]
        addend = state.addend.get(point)
        if addend is not None:
            x = x + addend
        if self.capture:
            state.z[point] = x.detach()
        return x

    @contextlib.contextmanager
    def _switched(self, active: bool, capture: bool):
        previous = self.active, self.capture
        self.active, self.capture = active, capture
        try:
            yield
        finally:
            self.active, self.capture = previous

    def _shapes_unknown(self, x: Tensor) -> bool:
        return self._example_shape != tuple(x.shape[1:])

    def _record_shapes(self, model: nn.Module, x: Tensor) -> None:
        """One eager forward of one example, in eval mode and without gradients (BatchNorm's
        running statistics untouched), to learn each point's state shape for the zero addends.
        `model.forward` bypasses a compiled call, so no graph is traced for it."""
        was_training = model.training
        for state in self.states:
            state.addend.clear()
        self._example_shape = tuple(x.shape[1:])
        try:
            with torch.no_grad(), self._switched(active=True, capture=True):
                model.eval().forward(x[:1])
        finally:
            model.train(was_training)


def _memory_format(z: Tensor) -> torch.memory_format:
    channels_last = z.dim() == 4 and z.is_contiguous(memory_format=torch.channels_last) and not z.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


def _zeros_like_rows(z: Tensor, rows: int) -> Tensor:
    """Zeros shaped like `z` with `rows` examples, in z's dtype, device and memory format."""
    return z.new_zeros((rows, *z.shape[1:])).contiguous(memory_format=_memory_format(z))


def _laid_out_like(p: Tensor, z: Tensor) -> Tensor:
    """p in z's memory format: a gradient can come back in another stride order, and a compiled
    graph that saw one layout would be traced again for the other."""
    return p.contiguous(memory_format=_memory_format(z))
