"""Shared fixtures and markers.

The demo datasets are built once per session: they are the stand-in for ImageNet/COCO in every
test that needs data on disk, and building them per test would dominate the run time.
"""
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line('markers', 'slow: takes more than a few seconds '
                                       '(deselect with -m "not slow")')
    config.addinivalue_line('markers', 'dist: starts several processes (torch.distributed)')
    config.addinivalue_line('markers', 'cuda: needs a CUDA GPU; skipped without one (benchmarks/gpu.sh runs them)')


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Skip ``cuda`` tests, saying why, where torch sees no GPU (CPU-only CI and laptops)."""
    cuda_items = [item for item in items if item.get_closest_marker('cuda')]
    if not cuda_items:
        return
    import torch
    if torch.cuda.is_available():
        return
    reason = ('needs a CUDA GPU: torch.cuda.is_available() is False here '
              f'(torch {torch.__version__}, built for CUDA {torch.version.cuda}); run benchmarks/gpu.sh on a GPU machine')
    for item in cuda_items:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope='session')
def imagenet_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small ImageNet-layout set: 10 classes x 30 images (24 train / 6 val), 64 px."""
    from cream_det.data import make_imagenet_digits
    return make_imagenet_digits(tmp_path_factory.mktemp('demo') / 'imagenet', size=64,
                                max_per_class=30, seed=0)


@pytest.fixture(scope='session')
def coco_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small COCO-format set: 40 train / 16 val canvases of 128 px."""
    from cream_det.data import make_coco_digits
    return make_coco_digits(tmp_path_factory.mktemp('demo') / 'coco', num_train=40, num_val=16,
                            canvas_size=128, seed=0)


@pytest.fixture(scope='module')
def one_thread():
    """Tiny tensors: one thread is fastest and immune to contention on a shared 2-core machine."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
