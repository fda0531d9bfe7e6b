"""Speed options change how fast a step runs, never what it computes."""

from __future__ import annotations

import pytest
import torch
from helpers import compose_config, pretend_cpu, tiny_net
from torch.utils.data import DataLoader, TensorDataset

from ladlit.data import DigitsDataModule
from ladlit.data.base import ShardedOrder
from ladlit.defenses import LayerwiseDefense, PGDTraining
from ladlit.module import AdversarialTraining

pytestmark = pytest.mark.numerics  # floats of two computations compared: see `make test-kernels`


def _sgd(params):
    return torch.optim.SGD(params, lr=0.1)


# (TRADES is left out: its first inner step takes the sign of a KL gradient that is ~0 at the
# clean point, so float-level differences between layouts flip signs and the runs diverge.)
@pytest.mark.parametrize(
    "defense",
    [PGDTraining(steps=2), LayerwiseDefense(PGDTraining(steps=2), scheme="strang_marchuk", eta=0.1)],
    ids=["pgd", "lad_sm"],
)
def test_channels_last_step_equals_the_default_layout(defense, batch):
    results = []
    for channels_last in (False, True):
        module = AdversarialTraining(tiny_net(), defense, _sgd, channels_last=channels_last)
        torch.manual_seed(0)
        x, y = batch
        loss = defense.training_loss(module.net, x.contiguous(memory_format=module.memory_format), y).loss
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in module.net.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert module.net.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_batched_loader_yields_the_per_image_loaders_batches():
    dm = DigitsDataModule(num_classes=10, mean=[0.3], std=[0.4], batch_size=64, val_size=0)
    dm.setup()
    order = list(ShardedOrder(len(dm.train_set), dm.order_seed, shuffle=True))
    x, y = dm.train_set.tensors
    per_image = DataLoader(TensorDataset(x[order], y[order]), batch_size=64, drop_last=True)
    ours = list(dm.train_dataloader())
    assert len(ours) == len(per_image) == len(order) // 64
    for (xa, ya), (xb, yb) in zip(ours, per_image):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_gpu_fast_preset_turns_the_speed_options_on():
    cfg = compose_config("train", ["trainer=gpu_fast"])
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.benchmark
    assert cfg.speed.channels_last and cfg.dataset.device_resident and not cfg.speed.compile
    assert cfg.trainer.max_epochs == compose_config("train").trainer.max_epochs  # the rest is trainer=default


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_device_resident_batches_are_the_host_batches():
    import pytorch_lightning as pl

    dm = DigitsDataModule(num_classes=10, mean=[0.3], std=[0.4], batch_size=64, val_size=0, device_resident=True)
    dm.trainer = pl.Trainer(accelerator="gpu", devices=1, logger=False)
    dm.setup()
    assert dm.train_set.device.type == "cuda"
    host = DigitsDataModule(num_classes=10, mean=[0.3], std=[0.4], batch_size=64, val_size=0)
    host.setup()
    for (xa, ya), (xb, yb) in zip(dm.train_dataloader(), host.train_dataloader()):
        assert torch.equal(xa.cpu(), xb) and torch.equal(ya.cpu(), yb)


def test_bf16_hardware_is_read_from_the_cpu_itself(monkeypatch):
    """The probe behind the bf16 warning and the study's refusal agrees with the kernel's CPU flags."""
    from pathlib import Path

    from ladlit.runs import cpu_kernels, native_bf16

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo to compare with")
    flags = set(" ".join(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert native_bf16() == bool(flags & {"avx512_bf16", "amx_tile"})
    kind = "AMX" if "amx_tile" in flags else "AVX512_CORE_BF16" if "avx512_bf16" in flags else "emulated"
    assert cpu_kernels()["bf16"] == kind


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "cap", "kind"),
    [
        (True, True, None, "AMX"),
        (True, True, "AVX512_CORE_AMX", "AMX"),
        (True, True, "avx512_core_bf16", "AVX512_CORE_BF16"),  # RESULTS 11.3: rounds as the EPYC
        (True, True, "AVX10_1_512", "AVX10_1_512"),  # AVX-512 FP16's kernels: never compared, a kind of its own
        (True, True, "AVX2", "emulated"),
        (True, True, "NO_SUCH_ISA", "AMX"),  # oneDNN ignores a cap it does not know
        (False, True, None, "AVX512_CORE_BF16"),
        (False, True, "AVX512_CORE_AMX", "AVX512_CORE_BF16"),  # a cap adds nothing the CPU lacks
        (False, True, "AVX512_CORE", "emulated"),
        (False, False, None, "emulated"),
        (False, False, "AVX512_CORE_BF16", "emulated"),
    ],
)
def test_the_bf16_kernels_named_in_a_record_follow_the_cpu_and_the_onednn_cap(monkeypatch, amx, avx512_bf16, cap, kind):
    from ladlit.runs import bf16_kernels, cpu_kernels

    pretend_cpu(monkeypatch, amx=amx, avx512_bf16=avx512_bf16, cap=cap)
    assert bf16_kernels() == cpu_kernels()["bf16"] == kind


def test_the_older_onednn_variable_caps_too(monkeypatch):
    from ladlit.runs import bf16_kernels

    pretend_cpu(monkeypatch, amx=True, avx512_bf16=True)
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert bf16_kernels() == "AVX512_CORE_BF16" and bf16_kernels(follow_cap=False) == "AMX"


@pytest.mark.parametrize("native", [True, False])
def test_bf16_without_bf16_hardware_is_announced_before_training(native, monkeypatch, capsys):
    from omegaconf import OmegaConf

    from ladlit import train

    pretend_cpu(monkeypatch, avx512_bf16=native)
    for precision in ("bf16-mixed", "32-true"):
        train.check_precision(OmegaConf.create({"trainer": {"precision": precision, "accelerator": "cpu"}}))
        err = capsys.readouterr().err
        assert ("emulated" in err) == (precision == "bf16-mixed" and not native)
        assert ("no bf16 hardware" in err) == (precision == "bf16-mixed" and not native)
    pretend_cpu(monkeypatch, avx512_bf16=True, cap="AVX2")  # the hardware is there, a cap hides it
    train.check_precision(OmegaConf.create({"trainer": {"precision": "bf16-mixed", "accelerator": "cpu"}}))
    assert "ONEDNN_MAX_CPU_ISA=AVX2 hides this CPU's bf16 hardware" in capsys.readouterr().err
