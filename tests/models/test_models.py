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


def test_zero_init_residual_starts_every_block_as_the_identity_map():
    """Each branch's last BatchNorm scale at 0: a block passes its (post-ReLU, so non-negative)
    input on unchanged, a transition block its shortcut: in the ODE view, F = 0 at the start."""
    net = CifarResNet(depth=20, zero_init_residual=True).eval()
    x = torch.relu(torch.randn(2, 16, 8, 8))
    for block in net.residual_blocks():
        assert torch.count_nonzero(block.bn2.weight) == 0
        out = block(x)
        if out.shape == x.shape:
            assert torch.equal(out, x)
        x = out
    plain = CifarResNet(depth=20).eval()
    assert all(torch.count_nonzero(b.bn2.weight) > 0 for b in plain.residual_blocks())


def test_he_init_draws_convolutions_with_std_sqrt_2_over_fan_out():
    torch.manual_seed(0)
    he, plain = CifarResNet(depth=20, conv_init="he"), CifarResNet(depth=20)
    # the last stage's transition conv, 32 -> 64 channels: fan_in 288, fan_out 576, 18,432 draws
    first = lambda net: net.residual_blocks()[6].conv1.weight
    assert first(he).std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.02)
    assert first(plain).std().item() == pytest.approx(
        (1 / (3 * 32 * 9)) ** 0.5, rel=0.02
    )  # PyTorch's: U(+-1/sqrt(fan_in))


def test_an_unknown_conv_init_is_refused_by_name():
    from ladlit.errors import ConfigError

    with pytest.raises(ConfigError, match="conv_init must be one of pytorch, he"):
        CifarResNet(depth=20, conv_init="xavier")
