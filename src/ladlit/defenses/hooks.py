"""Hook mechanics of the layer-wise defense, kept apart from its algorithm.

For each residual block, a forward-pre hook adds p["in"] to the block's input and a forward hook
adds p["out"] to its output; both register tensor hooks that capture the adjoints
a["in"] = dL/d(input), a["out"] = dL/d(output) when a backward pass (or `torch.autograd.grad`)
reaches them. Adding a constant does not change a gradient, so the adjoint of the perturbed
tensor is the adjoint of the state itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

Point = Literal["in", "out"]  # the two ends of a residual block, where states are read and perturbed


@dataclass
class BlockState:
    """What the hooks saw at one block's two ends in the last forward/backward pass, and what they
    inject there: z (hidden state, detached), a (its adjoint dL/dz), p (the perturbation added)."""

    z: dict[Point, Tensor] = field(default_factory=dict)
    a: dict[Point, Tensor] = field(default_factory=dict)
    p: dict[Point, Tensor] = field(default_factory=dict)

    @property
    def transition(self) -> bool:
        """True for a block that changes the state's shape (stride-2 / projection blocks)."""
        return "in" in self.z and "out" in self.z and self.z["in"].shape != self.z["out"].shape


class AdjointInjector:
    """Installs capture/injection hooks on `blocks`; `capture` and `inject` switch them per pass."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        self.blocks = blocks
        self.states = [BlockState() for _ in blocks]
        self.capture = False
        self.inject = False
        self._handles: list[RemovableHandle] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[AdjointInjector]:
        """Hooks on for the duration of the block; removed afterwards, also when it raises."""
        self.states = [BlockState() for _ in self.blocks]
        for i, block in enumerate(self.blocks):
            self._handles.append(block.register_forward_pre_hook(self._pre_hook(i)))
            self._handles.append(block.register_forward_hook(self._post_hook(i)))
        try:
            yield self
        finally:
            for handle in self._handles:
                handle.remove()
            self._handles.clear()
            self.capture = self.inject = False

    def forward(self, model: nn.Module, capture: bool, inject: bool):
        """`model` as a function whose calls run with the given hook switches."""

        def run(x: Tensor) -> Tensor:
            with self.switched(capture, inject):
                return model(x)

        return run

    @contextlib.contextmanager
    def switched(self, capture: bool, inject: bool) -> Iterator[None]:
        previous = self.capture, self.inject
        self.capture, self.inject = capture, inject
        try:
            yield
        finally:
            self.capture, self.inject = previous

    def _pre_hook(self, i: int):
        def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
            return (self._visit(self.states[i], args[0], "in"), *args[1:])

        return hook

    def _post_hook(self, i: int):
        def hook(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> Tensor:
            return self._visit(self.states[i], out, "out")

        return hook

    def _visit(self, state: BlockState, x: Tensor, point: Point) -> Tensor:
        """Add p[point] to the state x at one end of a block; record z[point], and a[point] on backward."""
        if self.inject and point in state.p:
            x = x + state.p[point]
        if self.capture:
            state.z[point] = x.detach()
            if x.requires_grad:
                x.register_hook(lambda grad: state.a.__setitem__(point, grad))
        return x
