"""DataModules: [0, 1] batches, batched augmentation, tarball decoding, validation split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA, make_tarball

from ladlit.data import DigitsDataModule, JpegTarballDataModule
from ladlit.data.augment import random_crop, random_hflip


def test_random_crop_is_a_shift_of_the_zero_padded_image():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6) + 1
    out = random_crop(x, padding=2)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        assert any(torch.equal(out[i], padded[i, :, r : r + 6, c : c + 6]) for r in range(5) for c in range(5))


def test_random_hflip_flips_some_and_keeps_others():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 4, 4)
    out = random_hflip(x)
    flipped = [torch.equal(o, xi.flip(2)) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54


def test_digits_split_and_scale():
    dm = DigitsDataModule(num_classes=10, mean=[0.3], std=[0.4], val_size=100)
    dm.setup()
    x, y = dm.train_set.tensors
    assert x.dtype == torch.uint8 and x.shape[1:] == (1, 8, 8) and x.max() == 255
    assert len(dm.val_set) == 100 and len(dm.train_set) + 100 + len(dm.test_set) == 1797
    assert set(y.tolist()) == set(range(10))


def toy_data_module(folder):
    """The data module of make_tarball's two-class archive in `folder`."""
    return JpegTarballDataModule(
        path=str(folder / "toy.tar.gz"),
        cache_dir=str(folder / "cache"),
        classes=["airplane", "cat"],
        num_classes=2,
        mean=[0.5] * 3,
        std=[0.5] * 3,
    )


def test_tarball_decodes_labels_with_their_images_interleaved_and_caches(tmp_path):
    make_tarball(tmp_path / "toy.tar.gz", n_per_class=20)
    dm = toy_data_module(tmp_path)
    arrays = dm.load()
    assert arrays.x_train.shape == (40, 4, 4, 3)
    # airplane = 0 as given; each image keeps its label (pixel value 40 * folder index + i)
    assert sorted(zip(arrays.y_train.tolist(), arrays.x_train[:, 0, 0, 0].tolist())) == [
        (0, 40 + i) for i in range(20)
    ] + [(1, i) for i in range(20)]
    # class folders are interleaved: the first 10 test images hold both classes (sorted by name they would not)
    assert set(arrays.y_test[:10].tolist()) == {0, 1}
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    np.testing.assert_array_equal(dm.load().x_test, arrays.x_test)


def test_batches_reach_the_model_in_unit_range():
    dm = DigitsDataModule(num_classes=10, mean=[0.3], std=[0.4], batch_size=32)
    dm.setup()
    x, y = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert x.dtype == torch.float32 and 0.0 <= x.min() and x.max() <= 1.0 and len(y) == 32


@pytest.mark.slow
@pytest.mark.skipif(
    not (SHARED_DATA / "cifar10-jpeg.tar.gz").is_file(), reason="needs ../shared/data/cifar10-jpeg.tar.gz"
)
def test_cifar10_jpeg_is_real_cifar10(tmp_path):
    dm = JpegTarballDataModule(
        path=str(SHARED_DATA / "cifar10-jpeg.tar.gz"), num_classes=10, mean=[0.5] * 3, std=[0.5] * 3
    )
    arrays = dm.load()
    assert arrays.x_train.shape == (50000, 32, 32, 3) and arrays.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(arrays.y_train).tolist() == [5000] * 10
    assert abs(arrays.x_train.mean() - 120.7) < 0.5


class _Stage:
    """Stands in for the Trainer in `on_after_batch_transfer`: only `training` is read."""

    def __init__(self, training: bool) -> None:
        self.training = training


def test_validation_and_test_batches_are_never_augmented():
    dm = DigitsDataModule(num_classes=10, mean=[0.3], std=[0.4], val_size=100, batch_size=64)
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    for stage, augmented in ((_Stage(False), False), (_Stage(True), True)):
        dm.trainer = stage
        torch.manual_seed(0)
        x, _ = dm.on_after_batch_transfer(batch, 0)
        assert torch.equal(x, batch[0].float() / 255) is not augmented


def test_training_order_is_a_new_shuffle_each_epoch_and_the_same_for_a_seed():
    dm = DigitsDataModule(num_classes=10, mean=[0.3], std=[0.4], batch_size=32, seed=5)
    dm.setup()
    loader = dm.train_dataloader()
    orders = []
    for epoch in (0, 1, 0):
        loader.batch_sampler.set_epoch(epoch) if loader.batch_sampler else loader.sampler.set_epoch(epoch)
        orders.append(torch.cat([y for _, y in loader]).tolist())
    assert orders[0] != orders[1] and orders[0] == orders[2]


def first_epoch_labels(*overrides: str) -> tuple[list[int], list[int]]:
    """The quickstart's training labels in the order of its first epoch, and its validation labels."""
    from helpers import compose_config

    from ladlit.config import build

    dm = build(compose_config("train", ["experiment=quickstart", *overrides]).dataset)
    dm.setup()
    return torch.cat([y for _, y in dm.train_dataloader()]).tolist(), dm.val_set.tensors[1].tolist()


def test_the_run_seed_draws_the_training_order_and_the_validation_split_stays_put():
    (order_0, val_0), (order_1, val_1) = first_epoch_labels("seed=0"), first_epoch_labels("seed=1")
    assert order_0 != order_1 and len(order_0) == len(order_1)
    assert val_0 == val_1  # every seed selects its checkpoint on the same images
    pinned = [first_epoch_labels(f"seed={seed}", "dataset.order_seed=0")[0] for seed in (0, 1)]
    assert pinned[0] == pinned[1] == order_0  # the committed study's protocol: every seed on order 0


def test_subsets_are_the_documented_images():
    """train_subset: the first N of the permutation `split_seed` draws after the validation split;
    test_subset: N test images drawn by the same seeded generator, kept in file order."""
    full = DigitsDataModule(num_classes=10, mean=[0.3], std=[0.4], val_size=100, split_seed=3)
    full.setup()
    arrays = full.load()
    dm = DigitsDataModule(
        num_classes=10, mean=[0.3], std=[0.4], val_size=100, split_seed=3, train_subset=50, test_subset=40
    )
    dm.setup()
    rng = np.random.default_rng(3)
    order = rng.permutation(len(arrays.y_train))
    expected_train = np.sort(order[100:150])
    expected_test = np.sort(rng.permutation(len(arrays.y_test))[:40])
    assert torch.equal(dm.train_set.tensors[1], torch.from_numpy(arrays.y_train[expected_train]))
    assert torch.equal(dm.test_set.tensors[0], torch.from_numpy(arrays.x_test[expected_test].transpose(0, 3, 1, 2)))
    assert torch.equal(dm.val_set.tensors[1], full.val_set.tensors[1])  # the subset leaves validation alone


def test_piecewise_lr_drops_at_its_milestones():
    from ladlit.schedules import piecewise

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    schedule = piecewise(opt, max_epochs=8, milestones=(0.5, 0.75), gamma=0.1)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert lrs == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_archive_is_decoded_once_in_prepare_data(tmp_path, monkeypatch):
    import ladlit.data.sources as sources

    make_tarball(tmp_path / "toy.tar.gz")
    make = lambda: toy_data_module(tmp_path)
    make().prepare_data()  # what Lightning runs once per node

    def no_second_decode(*args, **kwargs):
        raise AssertionError("decoded again in setup")

    monkeypatch.setattr(sources, "decode_members", no_second_decode)
    dm = make()  # another rank
    dm.setup("fit")
    assert len(dm.train_set) == 6
