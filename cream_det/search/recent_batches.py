"""The last few batches a rank trained on, kept to score a board candidate on more images than one batch.

The authors score a path for the board by its top-1 on the training batch it was just trained on,
averaged over their 8 GPUs: 8 x 128 = 1,024 images (``lib/core/train.py``: ``accuracy`` of the
step's output, ``reduce_tensor`` over GPUs, ``update_prioritized_board``). One process with a
64-image batch judges on 64, whose binomial error (4-6 points at 10-30 % top-1) is as large as the
board's 5-point margin. With ``board_eval_batches=N`` Cream scores the path on its own batch and on
the ``N - 1`` batches this rank trained on just before (:class:`RecentBatches`): training images as
the authors', at the path's weights of the step (before its update), each batch its own BatchNorm
batch in train mode as each of their GPUs' 128 images were, so a run with batches of B images on
R ranks judges on N x B x R images. Engine-free: tensors in, counts out.
"""
from __future__ import annotations

import itertools
from collections import deque
from typing import Any, Callable

import torch

from .grouped_bn import per_group_batch_norm


class RecentBatches:
    """Up to ``size`` (images, labels) batches, oldest first; each push drops the oldest beyond ``size``."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._batches: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=max(self.size, 0))

    def __len__(self) -> int:
        return len(self._batches)

    def push(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if self.size > 0:
            self._batches.append((images.detach(), labels.detach()))

    def correct(self, logits_fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> tuple[int, int]:
        """(correct top-1 predictions, images) of ``logits_fn`` over the kept batches, without gradients.

        Batches of equal size go through one forward in which train-mode BatchNorm normalises each batch
        by its own statistics (:func:`~.grouped_bn.per_group_batch_norm`, which also leaves the running
        statistics alone), as separate forwards would.
        """
        correct = total = 0
        with torch.no_grad():
            for _, group in itertools.groupby(self._batches, key=lambda b: tuple(b[0].shape)):
                group = list(group)
                images = torch.cat([x for x, _ in group]).to(device)
                labels = torch.cat([y for _, y in group]).to(device)
                with per_group_batch_norm(len(group)):
                    correct += int((logits_fn(images).argmax(1) == labels).sum())
                total += labels.numel()
        return correct, total

    def state_dict(self) -> list[list[torch.Tensor]]:
        """The batches on the CPU (a resumed search scores on the same images as an uninterrupted one)."""
        return [[x.cpu(), y.cpu()] for x, y in self._batches]

    def load_state_dict(self, state: list[Any]) -> None:
        self._batches.clear()
        for x, y in state[-self.size:] if self.size > 0 else []:
            self._batches.append((x, y))


__all__ = ['RecentBatches']
