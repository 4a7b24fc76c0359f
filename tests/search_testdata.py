"""A tiny in-memory classification dataset registered for the search tests' configs.

Separate from the on-disk ImageNet-layout data (used by the real configs) so the search engine's
tests exercise the algorithm and the Runner plumbing in seconds.
"""
import torch
from mmengine.registry import DATASETS
from torch.utils.data import Dataset


@DATASETS.register_module(force=True)
class _SearchToyData(Dataset):
    """Class-dependent blobs: learnable in a few dozen steps, deterministic from the seed."""

    def __init__(self, n: int = 96, num_classes: int = 5, size: int = 32, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % num_classes
        base = torch.randn(num_classes, 3, 1, 1, generator=g) * 1.5
        self.x = base[self.y] + 0.7 * torch.randn(n, 3, size, size, generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {'inputs': self.x[i], 'label': int(self.y[i])}
