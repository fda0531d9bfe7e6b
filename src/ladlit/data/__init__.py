"""In-memory image DataModules; see `base.InMemoryDataModule` for the shared behaviour."""

from ladlit.data.base import ImageArrays, InMemoryDataModule, to_unit_float
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
    "to_unit_float",
]
