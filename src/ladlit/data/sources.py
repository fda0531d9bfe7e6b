"""Concrete datasets. Each subclass only knows how to produce its uint8 arrays."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from rich.progress import Progress

from ladlit.data.base import ImageArrays, InMemoryDataModule
from ladlit.errors import DataNotFoundError

CACHE_VERSION = "v2"  # bump when the decoded arrays change (v2: interleaved class order)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DigitsDataModule(InMemoryDataModule):
    """scikit-learn's 8x8 handwritten digits (1,797 real images, 10 classes), bundled in its wheel.

    It is the offline default because it is real data that installs with a dependency, and an
    8x8 grey image keeps a PGD-trained residual net to seconds per epoch on 2 CPU cores.
    Pixels 0..16 are rescaled to uint8 0..255. The split is stratified and fixed by `split_seed`.
    """

    def __init__(self, test_fraction: float = 0.25, **kwargs) -> None:
        super().__init__(**kwargs)
        self.test_fraction = test_fraction

    def load(self) -> ImageArrays:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
        x_tr, x_te, y_tr, y_te = train_test_split(
            images, digits.target, test_size=self.test_fraction, stratify=digits.target, random_state=self.split_seed
        )
        return ImageArrays(x_tr, y_tr, x_te, y_te)


class TorchvisionDataModule(InMemoryDataModule):
    """CIFAR-10, CIFAR-100 or SVHN through torchvision (downloaded when `download=true`)."""

    def __init__(self, name: str, root: str = "data", download: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if name not in ("cifar10", "cifar100", "svhn"):
            raise ValueError(f"dataset.name must be cifar10, cifar100 or svhn, got {name!r}")
        self.name, self.root, self.download = name, root, download

    def load(self) -> ImageArrays:
        train, test = (self._split(train, download=self.download and self.trainer is None) for train in (True, False))
        return ImageArrays(train[0], train[1], test[0], test[1])

    def prepare_data(self) -> None:
        """Download once per node (Lightning calls this on one process), before any rank loads."""
        if self.download:
            for train in (True, False):
                self._split(train, download=True)

    def _split(self, train: bool, download: bool = False) -> tuple[np.ndarray, np.ndarray]:
        import torchvision.datasets as tvd

        try:
            if self.name == "svhn":
                ds = tvd.SVHN(self.root, split="train" if train else "test", download=download)
                return ds.data.transpose(0, 2, 3, 1), np.asarray(ds.labels)
            cls = tvd.CIFAR10 if self.name == "cifar10" else tvd.CIFAR100
            ds = cls(self.root, train=train, download=download)
            return ds.data, np.asarray(ds.targets)
        except (RuntimeError, OSError) as err:
            raise DataNotFoundError(
                f"{self.name} was not found under {Path(self.root).resolve()} ({err}). Run with dataset.download=true "
                "(needs internet), point dataset.root (or LADLIT_TORCHVISION_ROOT) at a copy, or train offline on "
                "dataset=cifar10_jpeg."
            ) from None


class JpegTarballDataModule(InMemoryDataModule):
    """Images in a .tar.gz laid out `train/<class>/*.jpg`, `test/<class>/*.jpg` (e.g. cifar10-jpeg).

    The gzip stream is read once, sequentially (random access into a .tar.gz is quadratic), and
    the decoded arrays are cached as .npz in `cache_dir`, keyed by the archive's size and mtime.
    """

    def __init__(
        self, path: str, cache_dir: str = "~/.cache/ladlit", classes: list[str] | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser()
        self.cache_dir = Path(cache_dir).expanduser()
        self.classes = tuple(classes) if classes else None

    def prepare_data(self) -> None:
        """Decode the archive into the cache once per node (Lightning calls this on one process)."""
        self.load()

    def load(self) -> ImageArrays:
        if not self.path.is_file():
            raise DataNotFoundError(
                f"No archive at {self.path.resolve()}. Put the data folder in LADLIT_DATA_DIR (default ../shared/data "
                "beside the project) or set dataset.path to a .tar.gz laid out as train/<class>/*.jpg and "
                "test/<class>/*.jpg; with internet, dataset=cifar10 dataset.download=true fetches CIFAR-10 instead."
            )
        cache = self.cache_dir / f"{self.path.stem}-{_fingerprint(self.path)}-{CACHE_VERSION}.npz"
        if cache.is_file():
            with np.load(cache) as z:
                return ImageArrays(z["x_train"], z["y_train"], z["x_test"], z["y_test"])
        try:
            arrays = decode_members(_tar_members(self.path), self.classes)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise DataNotFoundError(
                f"{self.path} is truncated or corrupt ({type(err).__name__}: {err}); copy it again "
                "(../shared/data/README.md gives its size and sha256)."
            ) from None
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(
            f"{cache.stem}.{os.getpid()}.tmp.npz"
        )  # one per process: concurrent decodes never share a file
        np.savez(tmp, **arrays.__dict__)
        os.replace(tmp, cache)
        return arrays


class ImageFolderDataModule(InMemoryDataModule):
    """A directory laid out `train/<class>/*`, `test/<class>/*` with same-sized images."""

    def __init__(self, root: str, classes: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.classes = tuple(classes) if classes else None

    def load(self) -> ImageArrays:
        if not (self.root / "train").is_dir() or not (self.root / "test").is_dir():
            raise DataNotFoundError(f"{self.root.resolve()} must contain train/<class>/ and test/<class>/ folders.")
        files = sorted(p for p in self.root.glob("*/*/*") if p.is_file())
        members = ((str(p.relative_to(self.root)), p.read_bytes()) for p in files)
        return decode_members(members, self.classes)


def decode_members(members: Iterable[tuple[str, bytes]], classes: tuple[str, ...] | None) -> ImageArrays:
    """Decode `split/class/name` image members into arrays; labels follow `classes` (or the sorted
    class-folder names).

    Sorted by name, a folder layout is sorted by class: the first 1,000 test images would be two
    classes. So each split is put in a fixed interleaved order (a permutation with seed 0 of the
    name order), as CIFAR's own files are: the first n test images are a class-balanced sample,
    whatever the archive's member order."""
    found: dict[str, list[tuple[str, str, np.ndarray]]] = {"train": [], "test": []}
    with Progress(transient=True) as progress:
        task = progress.add_task("decoding images", total=None)
        for name, data in members:
            parts = Path(name).parts
            if len(parts) < 3 or parts[-3] not in found:
                continue
            image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            found[parts[-3]].append((parts[-2], name, image))
            progress.advance(task)
    labels = classes or tuple(sorted({c for items in found.values() for c, _, _ in items}))
    if not found["train"] or not found["test"]:
        raise DataNotFoundError("The archive holds no train/<class>/* and test/<class>/* images.")
    out = []
    for split in ("train", "test"):
        items = sorted(found[split], key=lambda item: item[1])
        items = [items[i] for i in np.random.default_rng(0).permutation(len(items))]
        out.append(np.stack([img for _, _, img in items]))
        out.append(np.array([labels.index(c) for c, _, _ in items], dtype=np.int64))
    return ImageArrays(*out)


def _tar_members(path: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(path, mode="r|gz") as tar:
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member).read()


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha1(f"{stat.st_size}-{stat.st_mtime_ns}".encode()).hexdigest()[:10]
