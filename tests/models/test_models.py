"""Every backbone: [0, 1] in, logits out, residual blocks exposed in forward order."""

from __future__ import annotations

import pytest
import torch

from ladlit.models import CifarResNet, PreActResNet, WideResNet, find_residual_blocks

pytestmark = pytest.mark.numerics  # floats of two computations compared: see `make test-kernels`

MODELS = {
    "preact_resnet18": (lambda: PreActResNet(), 8, 11.17),
    "wrn_16_2": (lambda: WideResNet(depth=16, widen_factor=2), 6, 0.69),
    "resnet20": (lambda: CifarResNet(depth=20), 9, 0.27),
    "resnet56": (lambda: CifarResNet(depth=56), 27, 0.85),
}


@pytest.mark.parametrize("name", MODELS)
def test_model_shapes_blocks_and_size(name):
    make, n_blocks, million_params = MODELS[name]
    net = make().eval()
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert len(net.residual_blocks()) == n_blocks
    assert sum(p.numel() for p in net.parameters()) / 1e6 == pytest.approx(million_params, abs=0.01)


def test_residual_blocks_are_in_forward_order():
    net = CifarResNet(depth=20).eval()
    order = []
    handles = [
        b.register_forward_hook(lambda m, i, o, k=k: order.append(k)) for k, b in enumerate(net.residual_blocks())
    ]
    net(torch.rand(1, 3, 32, 32))
    for h in handles:
        h.remove()
    assert order == list(range(9))


def test_wrn_34_10_is_the_standard_size():
    assert sum(p.numel() for p in WideResNet(depth=34, widen_factor=10).parameters()) / 1e6 == pytest.approx(
        46.16, abs=0.01
    )


def test_find_blocks_by_name_pattern_in_foreign_models():
    from torchvision.models import resnet18

    blocks = find_residual_blocks(resnet18(), name_pattern=r"layer\d\.\d")
    assert len(blocks) == 8
    with pytest.raises(ValueError, match="No residual blocks"):
        find_residual_blocks(torch.nn.Linear(2, 2), types=["BasicBlock"])
