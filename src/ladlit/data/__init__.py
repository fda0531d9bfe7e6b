"""In-memory image DataModules; see `base.InMemoryDataModule` for the shared behaviour."""

from ladlit.data.base import ImageArrays, InMemoryDataModule
from ladlit.data.sources import (
    DigitsDataModule,
    ImageFolderDataModule,
    JpegTarballDataModule,
    TorchvisionDataModule,
)

__all__ = [
    "ImageArrays",
    "InMemoryDataModule",
    "DigitsDataModule",
    "TorchvisionDataModule",
    "JpegTarballDataModule",
    "ImageFolderDataModule",
]
