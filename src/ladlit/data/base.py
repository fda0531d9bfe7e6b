"""The one DataModule shape every dataset shares: uint8 images held in memory, augmented per batch.

Images stay uint8 (a CIFAR train set is 150 MB) until a batch reaches its device, where
`on_after_batch_transfer` scales it to [0, 1] and, for training batches, applies the
batched crop/flip. Normalisation is the model's first layer, so attacks see [0, 1] inputs.
A batch is one gather from the arrays (no per-image reads, no collate), and with
`device_resident=true` the arrays live on the accelerator, so no DataLoader worker or
host-to-device copy stands between the GPU and its next batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ladlit.checks import check_non_negative, check_positive_int
from ladlit.data.augment import random_crop, random_hflip
from ladlit.errors import ConfigError


@dataclass
class ImageArrays:
    """A train/test split as uint8 NHWC images and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class InMemoryDataModule(pl.LightningDataModule):
    """Base class: subclasses implement `load()`; this class splits, batches and augments.

    Args:
        num_classes: number of labels.
        mean, std: per-channel statistics, read by the model's `Normalize` layer.
        batch_size: training batch size (per process).
        eval_batch_size: batch size for validation/test (defaults to `batch_size`).
        val_size: images held out from the training set for validation (model selection,
            robust early stopping). 0: no validation at all, and the last epoch is tested (never a
            checkpoint selected on the test set).
        crop_padding: pixels of zero padding for the random crop (0 disables it).
        hflip: random horizontal flips.
        train_subset, test_subset: keep only the first N (shuffled with `split_seed`) images, for
            quick studies.
        seed: the run's seed (`${seed}` in every dataset config): it draws the training order, so
            the seeds of an arm see different batches.
        order_seed: pins the training order to this seed instead (the committed CPU study trained
            every seed on order 0); None follows `seed`.
        split_seed: seed of the validation split and the subsets, kept apart from `seed` so that
            every seed of a study selects its checkpoint on the same images.
        device_resident: hold the uint8 arrays on the trainer's device (GPU data path; CIFAR-10
            takes 180 MB there). Off, they stay in host memory and batches are copied over.
    """

    def __init__(
        self,
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: int = 0,
        crop_padding: int = 4,
        hflip: bool = True,
        train_subset: int | None = None,
        test_subset: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        order_seed: int | None = None,
        split_seed: int = 0,
        device_resident: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.mean, self.std = tuple(mean), tuple(std)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.eval_batch_size = check_positive_int("eval_batch_size", eval_batch_size or batch_size)
        self.val_size = int(check_non_negative("val_size", val_size))
        for name, subset in (("train_subset", train_subset), ("test_subset", test_subset)):
            if subset is not None:
                check_positive_int(name, subset)
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.train_subset, self.test_subset = train_subset, test_subset
        self.num_workers = num_workers
        self.order_seed = seed if order_seed is None else order_seed
        self.split_seed = split_seed
        self.device_resident = device_resident
        self.train_set: ArrayBatches | None = None

    def load(self) -> ImageArrays:
        """Return the dataset's arrays; raise `DataNotFoundError` with instructions if absent."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        arrays = self.load()
        if self.val_size >= len(arrays.y_train):
            raise ConfigError(
                f"dataset.val_size={self.val_size} holds out every one of the {len(arrays.y_train)} training images; "
                "set it lower (0 for no validation split)"
            )
        rng = np.random.default_rng(self.split_seed)
        train_order = rng.permutation(len(arrays.y_train))
        val_idx, train_idx = train_order[: self.val_size], train_order[self.val_size :]
        if self.train_subset:
            train_idx = train_idx[: self.train_subset]
        test_idx = np.arange(len(arrays.y_test))
        if self.test_subset:
            test_idx = rng.permutation(test_idx)[: self.test_subset]
        self.train_set = _tensors(arrays.x_train[np.sort(train_idx)], arrays.y_train[np.sort(train_idx)])
        self.test_set = _tensors(arrays.x_test[np.sort(test_idx)], arrays.y_test[np.sort(test_idx)])
        self.val_set = _tensors(arrays.x_train[np.sort(val_idx)], arrays.y_train[np.sort(val_idx)])
        if self.device_resident and self.trainer is not None:
            device = self.trainer.strategy.root_device
            self.train_set, self.val_set, self.test_set = (
                s.to(device) for s in (self.train_set, self.val_set, self.test_set)
            )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        """The held-out images; none ([]: Lightning skips validation) when val_size is 0."""
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False) if self.val_size else []

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)

    def _loader(self, dataset: ArrayBatches, batch_size: int, shuffle: bool) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        on_host = dataset.device.type == "cpu"
        order = ShardedOrder(len(dataset), self.order_seed, shuffle, rank, world)
        return DataLoader(
            dataset,
            batch_size=None,  # the sampler yields whole batches of indices; the dataset gathers them
            sampler=ShardedBatches(order, batch_size, drop_last=shuffle and len(dataset) > batch_size),
            # its own generator: making an iterator draws a base seed, and from the global RNG that
            # draw would shift the epoch's random crops and starts depending on when it happens
            generator=torch.Generator().manual_seed(self.order_seed),
            num_workers=self.num_workers if on_host else 0,
            pin_memory=on_host and torch.cuda.is_available(),
            persistent_workers=on_host and self.num_workers > 0,
        )

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        x, y = batch
        x = to_unit_float(x)
        if self.trainer is not None and self.trainer.training:
            x = self.augment(x)
        return x, y

    def augment(self, x: Tensor) -> Tensor:
        """Training augmentation, batched on the batch's device."""
        x = random_crop(x, self.crop_padding)
        return random_hflip(x) if self.hflip else x


class ArrayBatches(Dataset):
    """Images (uint8 NCHW) and labels, indexed by a whole batch of indices at once."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.tensors = (images, labels)

    @property
    def device(self) -> torch.device:
        return self.tensors[0].device

    def to(self, device: torch.device) -> ArrayBatches:
        return ArrayBatches(*(t.to(device) for t in self.tensors))

    def __len__(self) -> int:
        return len(self.tensors[1])

    def __getitem__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices, device=self.device)
        return self.tensors[0].index_select(0, index), self.tensors[1].index_select(0, index)


class ShardedOrder(Sampler[int]):
    """This process's share of one global order: positions rank, rank + world_size, ... of it.

    The training order is a permutation fixed by (seed, epoch), drawn when iteration starts
    (Lightning calls `set_epoch` before every epoch), so a resumed run sees the batches of an
    uninterrupted one; and the k-th global batch of N processes with batch B is the k-th batch
    of one process with batch N*B. Lightning's own distributed sampler is off
    (`trainer.use_distributed_sampler=false`) because it reshuffles training data.
    """

    def __init__(self, n: int, seed: int, shuffle: bool, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        else:
            order = torch.arange(self.n)
        usable = self.n - self.n % self.world_size if self.shuffle else self.n
        yield from order[self.rank : usable : self.world_size].tolist()

    def __len__(self) -> int:
        if self.shuffle:
            return self.n // self.world_size
        return len(range(self.rank, self.n, self.world_size))


class ShardedBatches(Sampler[list[int]]):
    """Consecutive `batch_size`-chunks of a `ShardedOrder` (Lightning sets the epoch through us)."""

    def __init__(self, order: ShardedOrder, batch_size: int, drop_last: bool) -> None:
        self.order, self.batch_size, self.drop_last = order, batch_size, drop_last

    def set_epoch(self, epoch: int) -> None:
        self.order.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(self.order)
        stop = len(indices) - len(indices) % self.batch_size if self.drop_last else len(indices)
        for start in range(0, stop, self.batch_size):
            yield indices[start : start + self.batch_size]

    def __len__(self) -> int:
        n = len(self.order)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def to_unit_float(x: Tensor) -> Tensor:
    """uint8 images (0..255) as float in [0, 1]; float images pass through unchanged."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def _tensors(images: np.ndarray, labels: np.ndarray) -> ArrayBatches:
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    return ArrayBatches(x, torch.from_numpy(labels.astype(np.int64)))
