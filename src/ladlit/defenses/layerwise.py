"""Layer-wise adversarial defense, LAD (Lie-Trotter) and LAD-SM (Strang-Marchuk), on top of an
input-space defense (PGD-AT, TRADES, MART, FGSM-RS; AWP on any). ../docs/method.md maps the method ("Layer-wise Adversarial
Defense: An ODE Perspective") to this file line by line.

Per training batch (docs/method.md, section 5):
  1. the base defense's inner maximisation runs through the block hooks (`hooks.py`), which
     add the current p_j if `inject_during_attack`; each backward pass also returns the
     adjoints a_j (gradients with respect to what the hooks added);
  2. after each inner backward pass, p_j <- c * eta_j * N(a_j) (scheme: which a, which c);
  3. the base's outer loss runs on the adversarial input with every p_j injected.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ladlit.checks import check_non_negative
from ladlit.defenses.base import Defense, DefenseOutput, EpochEnd, InputAdversarial
from ladlit.defenses.hooks import AdjointInjector, BlockState
from ladlit.defenses.pgd import PGDTraining
from ladlit.defenses.schemes import Scheme, get_scheme
from ladlit.errors import ConfigError
from ladlit.models.base import find_residual_blocks

NORMALIZERS = ("rms", "none", "l2", "sign")
# conf/defense's options for `defense@defense.base`: every input-space defense (the test of this
# refusal checks the list against conf/)
BASE_OPTIONS = ("pgd", "pgd_awp", "trades", "trades_awp", "mart", "fgsm_rs")
INJECTOR_ATTRIBUTE = "_ladlit_adjoint_injector"  # where a model keeps the injector its hooks serve
# What the CPU study (experiments/RESULTS.md, section 6) found to train ResNet-20 on CIFAR-10.
TRAINABLE_ETA = (
    "eta 0.0003-0.001 with normalize=rms (chosen on validation: 0.0003 where the model under-fits, "
    "0.001 where it over-fits; 0.003 collapsed one of the two regimes, 0.01 both)"
)
# Adversarial training's own loss starts at chance: after 128 steps PGD-AT's epoch loss was still
# 2.25-2.29 (ln 10 = 2.30) in the study. By 300 steps it is 7-10 % under ln C, every healthy LAD
# run at least 4 %, and the runs eta 0.01 broke at most 2 % (RESULTS 6.5).
STALL_CHECK_STEPS = 300
STALL_LOSS_FRACTION = 0.975  # of ln C: an epoch loss above it after STALL_CHECK_STEPS steps has stalled


def normalize_adjoint(a: Tensor, z: Tensor, mode: str) -> Tensor:
    """N(a), per sample: `rms` rescales a to the rms of the state z (so eta is a relative size),
    `l2` to unit l2 norm, `sign` is sign(a) * rms(z), `none` is a itself."""
    if mode == "none":
        return a
    dims = tuple(range(1, a.dim()))
    rms_z = z.pow(2).mean(dims, keepdim=True).sqrt()
    if mode == "sign":
        return a.sign() * rms_z
    if mode == "l2":
        return a / a.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * len(dims))
    return a * (rms_z / a.pow(2).mean(dims, keepdim=True).sqrt().clamp_min(1e-30))


class LearningStalledWarning(UserWarning):
    """The layer-wise perturbation keeps the training loss at chance level."""


class LayerwiseDefense(Defense):
    """LAD / LAD-SM: perturb every selected residual state along its own adjoint.

    Args:
        base: the input-space defense it rides on (PGD-AT, TRADES, MART, FGSM-RS, with or
            without AWP; not another layer-wise one); Hydra builds it from the nested
            `defense.base` node. None: PGD-AT with its defaults.
        scheme: "lie_trotter" (LAD) | "strang_marchuk" (LAD-SM).
        eta: scalar, or one value per stage, or one per block (after `blocks` selection).
        normalize: N in p = c * eta * N(a): "rms" (default), "none", "l2", "sign".
        blocks: indices of the residual blocks to perturb (None: all).
        block_types, block_name_pattern: how to find blocks in models without `residual_blocks()`.
        inject_during_attack: the inner steps already run the perturbed dynamics.
        detach: the injected p_j is a constant in the weight update (False: differentiate
            through the adjoints, one extra double-backward pass per batch).
        eta_warmup_epochs: eta grows linearly over this many epochs (0: constant).
    """

    def __init__(
        self,
        base: InputAdversarial | None = None,
        scheme: str | Scheme = "lie_trotter",
        eta: float | list[float] = 0.0003,
        normalize: str = "rms",
        blocks: list[int] | None = None,
        block_types: list[str] | None = None,
        block_name_pattern: str | None = None,
        inject_during_attack: bool = True,
        detach: bool = True,
        eta_warmup_epochs: int = 0,
    ) -> None:
        if normalize not in NORMALIZERS:
            raise ConfigError(f"normalize must be one of {NORMALIZERS}, got {normalize!r}", key="normalize")
        if base is not None and not isinstance(base, InputAdversarial):
            nested = " (layer-wise defenses do not nest)" if isinstance(base, LayerwiseDefense) else ""
            raise ConfigError(
                f"base must be an input-space defense (PGD-AT, TRADES, MART or FGSM-RS, each with or without AWP), "
                f"got {type(base).__name__}{nested}; choose it with defense@defense.base={'|'.join(BASE_OPTIONS)}",
                key="base",
            )
        self.base = base if base is not None else PGDTraining()
        self.scheme = get_scheme(scheme)
        etas = [eta] if isinstance(eta, (int, float)) else list(eta)
        self.eta = [check_non_negative("eta", float(e)) for e in etas]
        self.normalize = normalize
        self.block_indices = None if blocks is None else list(blocks)
        self.block_types, self.block_name_pattern = block_types, block_name_pattern
        self.inject_during_attack, self.detach = inject_during_attack, detach
        self.eta_warmup_epochs = eta_warmup_epochs
        self.epoch = 0
        self._stall_checked = False
        self.injector: AdjointInjector | None = None  # the one on the model trained last

    def __getstate__(self) -> dict:
        """Pickled (DDP spawn, launchers) without the hooks' model: it is found again on first use."""
        return {**self.__dict__, "injector": None}

    @property
    def not_compilable(self) -> str:
        if self.detach:
            return ""
        return "defense.detach=false differentiates through the adjoints (a double backward pass), which a compiled model does not support"

    def on_train_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        self.base.on_train_epoch_start(epoch)

    def after_optimizer_step(self) -> None:
        self.base.after_optimizer_step()

    def on_train_epoch_end(self, end: EpochEnd) -> None:
        """Warn once if, at the first epoch end past STALL_CHECK_STEPS steps, the epoch's loss is
        still near chance (ln C): the hidden-state perturbation is then too strong to learn."""
        self.base.on_train_epoch_end(end)
        steps, mean_loss, num_classes = end.steps, end.mean_loss, end.num_classes
        if self._stall_checked or steps < STALL_CHECK_STEPS:
            return
        self._stall_checked = True
        chance = math.log(num_classes)
        if max(self.eta) > 0 and mean_loss > STALL_LOSS_FRACTION * chance:
            warnings.warn(
                f"defense.eta={self.eta if len(self.eta) > 1 else self.eta[0]} (normalize={self.normalize}): after {steps} steps the training loss "
                f"{mean_loss:.3f} is still near chance (ln {num_classes} = {chance:.3f}; PGD-AT is 7-10 % below it by then): "
                f"the layer-wise perturbation is keeping the model from learning. "
                f"If the loss stays there, lower eta: the CPU study found {TRAINABLE_ETA} to train (experiments/RESULTS.md).",
                LearningStalledWarning,
                stacklevel=2,
            )

    def training_loss(self, model: nn.Module, x: Tensor, y: Tensor) -> DefenseOutput:
        injector = self._injector_for(model)
        injector.reset()
        attack_forward = injector.forward(model, capture=True, inject=self.inject_during_attack)
        x_adv = self.base.inner_max(model, x, y, forward=attack_forward, tap=self)
        if not self.detach:
            self._differentiable_adjoints(model, x, x_adv, y)
        return self.base.outer_step(model, x, x_adv, y, forward=injector.forward(model, capture=False, inject=True))

    def leaves(self) -> list[Tensor]:
        """What the inner maximisation also differentiates: the hidden-state addends."""
        return self.injector.leaves()

    def receive(self, grads: Sequence[Tensor | None]) -> None:
        """The adjoints of the last inner step; the perturbations follow them."""
        self.injector.receive(grads)
        self.update_perturbations()

    def update_perturbations(self) -> None:
        """p_j <- c * eta_j * N(a_j), with the adjoint the scheme assigns to point j."""
        states = self.injector.states
        for state, eta in zip(states, self.block_etas(states)):
            for point, source in self.scheme.plan(state.transition).items():
                if eta == 0.0 or source not in state.a:
                    state.p.pop(point, None)
                else:
                    state.p[point] = (
                        self.scheme.coefficient
                        * eta
                        * normalize_adjoint(state.a[source], state.z[point], self.normalize)
                    )

    def block_etas(self, states: list[BlockState]) -> list[float]:
        """eta for every hooked block: 0 for unselected blocks, warm-up factor applied."""
        factor = min(1.0, (self.epoch + 1) / self.eta_warmup_epochs) if self.eta_warmup_epochs > 0 else 1.0
        selected = self.block_indices if self.block_indices is not None else list(range(len(states)))
        stages = _stage_ids(states)
        if len(self.eta) == 1:
            values = self.eta * len(selected)
        elif len(self.eta) == max(stages) + 1:
            values = [self.eta[stages[i]] for i in selected]
        elif len(self.eta) == len(selected):
            values = self.eta
        else:
            raise ValueError(
                f"defense.eta has {len(self.eta)} values; give 1, one per stage ({max(stages) + 1}) or one per selected block ({len(selected)})"
            )
        etas = [0.0] * len(states)
        for i, value in zip(selected, values):
            etas[i] = factor * value
        return etas

    def diagnostics(self) -> dict[str, Tensor]:
        """Per-block mean l2 norm (per sample) of the input adjoint and of what was injected."""
        logs: dict[str, Tensor] = {}
        for i, st in enumerate(self.injector.states if self.injector else []):
            if "in" in st.a:
                logs[f"lad/adjoint_norm/block{i:02d}"] = st.a["in"].detach().flatten(1).norm(dim=1).mean()
            injected = [p.detach().flatten(1).norm(dim=1) for p in st.p.values()]
            if injected:
                logs[f"lad/perturbation_norm/block{i:02d}"] = torch.stack(injected).sum(0).mean()
        return logs

    def forget(self, model: nn.Module) -> None:
        """Unhook `model`: its blocks' hooks hold its injector and the injector its blocks, a cycle
        that only Python's rarest garbage collection frees, and with it a batch of states, adjoints
        and perturbations for every block. The label-leak guard's copy, once per validation, grew
        a run by 0.45 GB per validation at depth 20 and killed two ResNet-56 runs out of memory
        (experiments/RESULTS.md 10.4)."""
        injector = getattr(model, INJECTOR_ATTRIBUTE, None)
        if injector is None:
            return
        injector.close()
        delattr(model, INJECTOR_ATTRIBUTE)
        if self.injector is injector:
            self.injector = None

    def check_model(self, model: nn.Module) -> None:
        """The model has residual blocks to hook, `blocks` names only existing ones, and `eta` has a
        length the model's stages and blocks allow (found by one forward of a blank batch, in eval
        mode, for models that say how many channels they take)."""
        injector = self._injector_for(model)
        normalize = getattr(model, "normalize", None)
        channels = getattr(getattr(normalize, "mean", None), "shape", (0, 0))[1]
        if not channels or len(self.eta) == 1:
            return
        was_training = model.training
        blank = torch.zeros(2, channels, 32, 32, device=normalize.mean.device)
        try:
            with torch.no_grad():
                injector.forward(model.eval(), capture=True, inject=False)(blank)
                self.block_etas(injector.states)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        finally:
            model.train(was_training)

    def _injector_for(self, model: nn.Module) -> AdjointInjector:
        """The injector hooked on `model`'s blocks, installed on first use and kept with the model
        (a deep copy of the model carries its own); not found by id(), which a freed model's
        copy can reuse."""
        found = getattr(model, INJECTOR_ATTRIBUTE, None)
        if found is None or self.injector is not found:
            try:
                blocks = find_residual_blocks(model, self.block_types, self.block_name_pattern)
            except ValueError as err:
                raise ConfigError(f"{err} Set defense.block_types or defense.block_name_pattern.") from None
            if self.block_indices is not None and any(not 0 <= i < len(blocks) for i in self.block_indices):
                raise ConfigError(
                    f"defense.blocks={self.block_indices} is out of range: the model has {len(blocks)} residual blocks (indices 0 to {len(blocks) - 1})"
                )
            if found is None or [id(b) for b in found.blocks] != [id(b) for b in blocks]:
                if found is not None:
                    found.close()
                found = AdjointInjector(blocks)
                setattr(model, INJECTOR_ATTRIBUTE, found)
            self.injector = found
        return self.injector

    def _differentiable_adjoints(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> None:
        """Recompute the adjoints at x_adv with a graph to the weights (detach=False)."""
        forward = self.injector.forward(model, capture=True, inject=self.inject_during_attack)
        with self.base.attack_mode(model):
            x_in = x_adv.clone().requires_grad_(True)
            objective = self.base.objective(model, x, y)
            value = objective(forward(x_in))
            leaves = self.injector.leaves()
            grads = torch.autograd.grad(value, [x_in, *leaves], create_graph=True, allow_unused=True)
        self.receive(grads[1:])


def _stage_ids(states: list[BlockState]) -> list[int]:
    """Stage of each block: a new stage starts at every transition block after the first block."""
    stage, ids = 0, []
    for i, st in enumerate(states):
        stage += int(i > 0 and st.transition)
        ids.append(stage)
    return ids
