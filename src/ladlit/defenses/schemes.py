"""Operator-splitting schemes: which adjoint each injection point of a block receives.

One residual block is one step of dx/dt = f(x, t) + gamma(t) a(t) (see docs/method.md).
The previous backward pass gives the adjoint at the block's input (a_n) and output (a_{n+1}).

  Lie-Trotter (LAD):      x_{n+1} = F_n(x_n) + eta a_n
  Strang-Marchuk (LAD-SM): u = x_n + eta/2 a_n;   x_{n+1} = F_n(u) + eta/2 a_{n+1}

A transition block (output shape != input shape) cannot take a_n at its output; Lie-Trotter
uses the output's own adjoint there. Strang-Marchuk never mixes shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ladlit.defenses.hooks import Point
from ladlit.errors import ConfigError


@dataclass(frozen=True)
class Scheme:
    """A splitting scheme: the weight of each injection and where its adjoint is read."""

    name: str
    coefficient: float

    def plan(self, transition: bool) -> dict[Point, Point]:
        """Map injection point -> the point whose adjoint it receives."""
        raise NotImplementedError


class LieTrotter(Scheme):
    """First order: a full block step, then a full explicit-Euler step of the adjoint forcing."""

    def __init__(self) -> None:
        super().__init__("lie_trotter", 1.0)

    def plan(self, transition: bool) -> dict[Point, Point]:
        return {"out": "out" if transition else "in"}


class StrangMarchuk(Scheme):
    """Second order: half forcing step (input adjoint), full block step, half step (output adjoint)."""

    def __init__(self) -> None:
        super().__init__("strang_marchuk", 0.5)

    def plan(self, transition: bool) -> dict[Point, Point]:
        return {"in": "in", "out": "out"}


SCHEMES: dict[str, Scheme] = {s.name: s for s in (LieTrotter(), StrangMarchuk())}


def get_scheme(name: str | Scheme) -> Scheme:
    """The scheme called `name` ("lie_trotter" or "strang_marchuk")."""
    if isinstance(name, Scheme):
        return name
    if name not in SCHEMES:
        raise ConfigError(f"scheme must be one of {sorted(SCHEMES)}, got {name!r}", key="scheme")
    return SCHEMES[name]
