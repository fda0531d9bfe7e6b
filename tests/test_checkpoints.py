"""Models from elsewhere: RobustBench's PreActResNet-18 and WideResNet key names load into
ladlit's models through a key map, and the loaded model computes what theirs computes;
`ladlit.eval robustbench=<name>` evaluates what the robustbench package loads, or says clearly
why it cannot."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from helpers import compose_config, tiny_net
from hydra.utils import instantiate
from torch import nn

from ladlit.checkpoints import load_weights, net_state_dict
from ladlit.errors import CheckpointError, ConfigError
from ladlit.eval import evaluate_checkpoint
from ladlit.evaluation import evaluate
from ladlit.models import PreActResNet, WideResNet


# Minimal replicas of robustbench/model_zoo/architectures/resnet.py and wide_resnet.py: the same
# module names (hence state_dict keys) and the same forward arithmetic.
class RBPreActBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(in_planes), nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


class RBPreActResNet(nn.Module):
    def __init__(self, num_blocks=(2, 2, 2, 2), num_classes=10):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.layer1 = self._make_layer(64, num_blocks[0], 1)
        self.layer2 = self._make_layer(128, num_blocks[1], 2)
        self.layer3 = self._make_layer(256, num_blocks[2], 2)
        self.layer4 = self._make_layer(512, num_blocks[3], 2)
        self.bn, self.linear = nn.BatchNorm2d(512), nn.Linear(512, num_classes)

    def _make_layer(self, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(RBPreActBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1).flatten(1)
        return self.linear(out)


class RBWideBlock(nn.Module):
    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(in_planes), nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(out_planes), nn.ReLU()
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.equal = in_planes == out_planes
        self.convShortcut = None if self.equal else nn.Conv2d(in_planes, out_planes, 1, stride, bias=False)

    def forward(self, x):
        if not self.equal:
            x = self.relu1(self.bn1(x))
            out = x
        else:
            out = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
        return (x if self.equal else self.convShortcut(x)) + out


class RBNetworkBlock(nn.Module):
    def __init__(self, n, in_planes, out_planes, stride):
        super().__init__()
        self.layer = nn.Sequential(
            *[RBWideBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1) for i in range(n)]
        )

    def forward(self, x):
        return self.layer(x)


class RBWideResNet(nn.Module):
    def __init__(self, depth=16, widen_factor=2, num_classes=10):
        super().__init__()
        n, w = (depth - 4) // 6, [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(3, w[0], 3, 1, 1, bias=False)
        self.block1, self.block2, self.block3 = (
            RBNetworkBlock(n, w[0], w[1], 1),
            RBNetworkBlock(n, w[1], w[2], 2),
            RBNetworkBlock(n, w[2], w[3], 2),
        )
        self.bn1, self.relu, self.fc = nn.BatchNorm2d(w[3]), nn.ReLU(), nn.Linear(w[3], num_classes)

    def forward(self, x):
        out = self.relu(self.bn1(self.block3(self.block2(self.block1(self.conv1(x))))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def _randomise(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, so a mismapped BatchNorm shows
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.numerics
def test_robustbench_preact_resnet18_loads_and_computes_the_same():
    theirs = _randomise(RBPreActResNet())
    ours = PreActResNet(mean=[0.0] * 3, std=[1.0] * 3).eval()  # their models take raw [0, 1] inputs
    load_weights(ours, net_state_dict({"state_dict": theirs.state_dict()}), source="rb.pt")
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


@pytest.mark.numerics
def test_robustbench_wide_resnet_loads_and_computes_the_same():
    theirs = _randomise(RBWideResNet(depth=16, widen_factor=2))
    state = {f"module.{k}": v for k, v in theirs.state_dict().items()}  # as saved from DataParallel
    ours = WideResNet(depth=16, widen_factor=2, mean=[0.0] * 3, std=[1.0] * 3).eval()
    load_weights(ours, net_state_dict(state), source="rb.pt")
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


def _fake_robustbench(monkeypatch, load_model):
    """Install a stand-in `robustbench` package whose `utils.load_model` is `load_model` (offline)."""
    package, utils = types.ModuleType("robustbench"), types.ModuleType("robustbench.utils")
    utils.load_model = load_model
    package.utils = utils
    monkeypatch.setitem(sys.modules, "robustbench", package)
    monkeypatch.setitem(sys.modules, "robustbench.utils", utils)


def _zoo_eval_config(tmp_path, *overrides):
    return compose_config(
        "eval",
        ["robustbench=Some2024Model", "dataset=digits", f"robustbench_dir={tmp_path}", "eps_sweep=[]", *overrides],
    )


def test_robustbench_model_is_loaded_through_the_package_and_evaluated_with_its_protocol(tmp_path, monkeypatch):
    zoo_net = _randomise(tiny_net(seed=3, channels=1))  # an architecture with random weights
    calls = []

    def load_model(**kwargs):
        calls.append(kwargs)
        return zoo_net

    _fake_robustbench(monkeypatch, load_model)
    entries = evaluate_checkpoint(_zoo_eval_config(tmp_path, "attack=[fgsm]", "n_examples=40", "sanity_examples=20"))
    assert calls == [
        {"model_name": "Some2024Model", "model_dir": str(tmp_path), "dataset": "cifar10", "threat_model": "Linf"}
    ]
    (attacked,) = [e for k, e in entries.items() if "| fgsm |" in k]
    assert attacked["eps"] == pytest.approx(8 / 255)  # RobustBench's eps
    assert attacked["n_examples"] == 40  # its first n test points
    dm = instantiate(compose_config("eval", ["dataset=digits"]).dataset)
    dm.setup("test")
    expected, _ = evaluate(zoo_net, dm.test_dataloader(), {}, torch.device("cpu"), 40)
    assert attacked["accuracy"]["clean"] == expected["clean"]  # the zoo's model is the one evaluated
    record = json.loads((tmp_path / "cifar10" / "Linf" / "metrics.json").read_text())["evaluations"]
    assert any("sanity" in k for k in record) and any("fgsm" in k for k in record)


def test_robustbench_without_the_package_or_the_weights_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "robustbench", None)  # `import robustbench` raises ImportError
    with pytest.raises(ConfigError, match=r"needs the robustbench package.*ckpt=<file.pt> model="):
        evaluate_checkpoint(_zoo_eval_config(tmp_path))

    def offline(**kwargs):
        raise ConnectionError("Failed to establish a new connection")

    _fake_robustbench(monkeypatch, offline)
    with pytest.raises(CheckpointError, match=r"Some2024Model.*ConnectionError.*needs internet"):
        evaluate_checkpoint(_zoo_eval_config(tmp_path))
    assert list(tmp_path.iterdir()) == []  # nothing written
