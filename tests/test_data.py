"""DataModules: [0, 1] batches, batched augmentation, tarball decoding, validation split."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA
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


def _make_tarball(path, n_per_class=3):
    with tarfile.open(path, "w:gz") as tar:
        for split in ("test", "train"):  # unsorted on purpose
            for label, cls in enumerate(["cat", "airplane"]):
                for i in range(n_per_class):
                    buf = io.BytesIO()
                    Image.fromarray(np.full((4, 4, 3), 40 * label + i, np.uint8)).save(buf, format="PNG")
                    info = tarfile.TarInfo(f"{split}/{cls}/{i:04d}.png")
                    info.size = len(buf.getvalue())
                    tar.addfile(info, io.BytesIO(buf.getvalue()))


def test_tarball_decodes_labels_with_their_images_interleaved_and_caches(tmp_path):
    _make_tarball(tmp_path / "toy.tar.gz", n_per_class=20)
    dm = JpegTarballDataModule(
        path=str(tmp_path / "toy.tar.gz"),
        cache_dir=str(tmp_path / "cache"),
        classes=["airplane", "cat"],
        num_classes=2,
        mean=[0.5] * 3,
        std=[0.5] * 3,
    )
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
