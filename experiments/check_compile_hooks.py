"""Does a torch.compile'd backbone still run the layer-wise defense's hooks? (Why `speed.compile`
is refused with defense=lad/lad_sm.)

One training loss of ResNet-20 on a fixed random batch (3 attack steps, eta 0.05), eager and
after `nn.Module.compile()`, same seed. If compilation skipped the hooks, the compiled LAD and
LAD-SM losses equal the compiled PGD-AT loss instead of the eager LAD / LAD-SM ones.

    python experiments/check_compile_hooks.py
"""

from __future__ import annotations

import copy

import torch

from benchlib import header, pick_device
from ladlit.defenses import LayerwiseDefense, PGDTraining
from ladlit.models import CifarResNet


def main() -> None:
    device = pick_device()
    torch.manual_seed(0)
    eager = CifarResNet(depth=20).to(device)
    compiled = copy.deepcopy(eager)
    compiled.compile()
    x, y = torch.rand(32, 3, 32, 32, device=device), torch.randint(0, 10, (32,), device=device)
    defenses = {
        "pgd": PGDTraining(steps=3),
        "lad": LayerwiseDefense(PGDTraining(steps=3), scheme="lie_trotter", eta=0.05),
        "lad_sm": LayerwiseDefense(PGDTraining(steps=3), scheme="strang_marchuk", eta=0.05),
    }
    print(header("check_compile_hooks", device, "ResNet-20, batch 32, 3 attack steps, eta 0.05"))
    print("| defense | eager loss | compiled loss |")
    print("|---|---:|---:|")
    for name, defense in defenses.items():
        losses = []
        for net in (eager, compiled):
            torch.manual_seed(1)
            losses.append(defense.training_loss(net, x, y).loss.item())
        print(f"| {name} | {losses[0]:.4f} | {losses[1]:.4f} |", flush=True)


if __name__ == "__main__":
    main()
