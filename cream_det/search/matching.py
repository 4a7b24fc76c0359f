"""Meta matching network (Cream, Sec. 3.2): which prioritized path should teach this student, and how much.

For a student path and each board entry, the matcher looks at how the student's predictions on
the entry's stored images differ from the entry's own soft targets::

    score_k = M_phi( softmax(student(images_k)) - soft_k )        # M_phi: one Linear layer

The best-scoring entry teaches, with matching weight ``m = sigmoid(-score)``, in the loss::

    L(theta; m) = ( m * KD(student, teacher) + (2 - m) * CE(student, labels) ) / 2

The matcher is learnt by a second-order (meta) step: simulate one SGD step of the student with
that loss, ``theta' = theta - lr * grad_theta L(theta; m(phi))``, and descend the cross-entropy of
the updated student on held-out images with respect to phi, through the simulated step:
``d L_val(theta'(phi)) / d phi``. :func:`meta_update` computes exactly that chain rule with
``torch.func.functional_call``, leaving the supernet's weights and BatchNorm statistics untouched.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from .board import BoardEntry, PrioritizedBoard

if TYPE_CHECKING:
    from ..models.supernet import PathLike


class MetaMatchingNetwork(nn.Module):
    """M_phi: scores a (student, teacher) pair from the student's error on the teacher's slice."""

    def __init__(self, num_classes: int, slice_size: int = 4) -> None:
        super().__init__()
        self.num_classes, self.slice_size = num_classes, slice_size
        self.fc = nn.Linear(num_classes * slice_size, 1)

    def forward(self, student_probs: torch.Tensor, teacher_soft: torch.Tensor) -> torch.Tensor:
        """Scores of ``(..., slice, classes)`` probability pairs: one per leading index."""
        diff = student_probs - teacher_soft
        if tuple(diff.shape[-2:]) != (self.slice_size, self.num_classes):
            raise ValueError(f'the matcher scores {self.slice_size} x {self.num_classes} predictions per entry, got '
                             f'{tuple(diff.shape[-2:])}: board slices and matcher slice_size/num_classes must agree')
        return self.fc(diff.flatten(start_dim=-2)).squeeze(-1)

    def weight_of(self, score: torch.Tensor) -> torch.Tensor:
        """Matching weight m of a score: how much the student should trust that teacher."""
        return torch.sigmoid(-score)


# ---- teacher selection ------------------------------------------------------------------------------
LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def select_teacher(student_logits_fn: LogitsFn, board: PrioritizedBoard | Sequence[BoardEntry],
                   matcher: MetaMatchingNetwork) -> tuple[int, float]:
    """Index of the best-matching board entry and its weight m, from ONE student forward.

    All entries' stored images go through the student as a single batch. With BatchNorm in train
    mode the batch statistics then span every entry (and running statistics are updated by the
    call), so pass a function that runs the student as you want it scored, e.g. in eval mode.
    """
    entries = list(board)
    if not entries:
        raise LookupError('cannot select a teacher: the prioritized board is empty')
    with torch.no_grad():
        logits = student_logits_fn(torch.cat([e.images for e in entries]).to(_device(matcher)))
        probs = F.softmax(logits, dim=1).view(len(entries), -1, logits.shape[1])
        scores = matcher(probs, torch.stack([e.soft.to(probs) for e in entries]))
    return _pick(scores, matcher)


def select_teacher_naive(student_logits_fn: LogitsFn, board: PrioritizedBoard | Sequence[BoardEntry],
                         matcher: MetaMatchingNetwork) -> tuple[int, float]:
    """As :func:`select_teacher` with one student forward per entry (the authors' loop; benchmark baseline)."""
    entries = list(board)
    if not entries:
        raise LookupError('cannot select a teacher: the prioritized board is empty')
    with torch.no_grad():
        scores = []
        for e in entries:
            probs = F.softmax(student_logits_fn(e.images.to(_device(matcher))), dim=1)
            scores.append(matcher(probs, e.soft.to(probs)))
    return _pick(torch.stack(scores), matcher)


def select_teacher_top1(board: PrioritizedBoard | Sequence[BoardEntry]) -> tuple[int, float]:
    """The paper's 'top1' ablation: the best board path teaches with a fixed m = 0.5."""
    if not len(board):
        raise LookupError('cannot select a teacher: the prioritized board is empty')
    return 0, 0.5


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device      # the matcher lives where the student does


def _pick(scores: torch.Tensor, matcher: MetaMatchingNetwork) -> tuple[int, float]:
    # the weight is the chosen entry's (the authors' code uses the last entry's score: a bug)
    index = int(torch.argmax(scores))
    return index, float(matcher.weight_of(scores[index]))


# ---- the student's loss -----------------------------------------------------------------------------
def soft_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
    """KD term: cross-entropy of the student against a teacher's softmax."""
    return -(soft_targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def student_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_soft: torch.Tensor,
                 m: float | torch.Tensor) -> torch.Tensor:
    """(m * KD + (2 - m) * CE) / 2: m in (0, 1) trades the teacher against the labels."""
    kd = soft_cross_entropy(logits, teacher_soft)
    ce = F.cross_entropy(logits, labels)
    return (m * kd + (2 - m) * ce) / 2


# ---- the meta (second-order) update -----------------------------------------------------------------
def meta_update(supernet: nn.Module, arch: 'PathLike', matcher: MetaMatchingNetwork, teacher_entry: BoardEntry,
                x_train: torch.Tensor, y_train: torch.Tensor, teacher_soft_train: torch.Tensor,
                x_val: torch.Tensor, y_val: torch.Tensor, inner_lr: float) -> dict[str, float]:
    """Accumulate d L_val(theta'(phi)) / d phi into ``matcher``'s ``.grad``; the caller steps its optimizer.

    1. m(phi) from the student's softmax on the teacher entry's stored images (the student is a
       constant here: only phi is differentiated through m);
    2. L_train = student_loss(student(x_train), y_train, teacher_soft_train, m(phi));
    3. theta' = theta - inner_lr * grad_theta L_train over the path's parameters, keeping the graph;
    4. L_val = CE(student_theta'(x_val), y_val), back-propagated into phi only.

    Every forward runs on cloned BatchNorm buffers, so the supernet's running statistics, weights
    and ``.grad`` are exactly as before. ``supernet`` must offer ``named_path_parameters(arch)``
    and ``named_path_buffers(arch)`` (as :class:`~cream_det.models.supernet.Supernet` does).
    """
    theta = dict(supernet.named_path_parameters(arch))
    buffers = {n: b.clone() for n, b in supernet.named_path_buffers(arch)}

    def student(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(supernet, {**params, **buffers}, (x, arch))

    with torch.no_grad():
        probs = F.softmax(student(theta, teacher_entry.images.to(x_train)), dim=1)
    score = matcher(probs, teacher_entry.soft.to(probs))
    m = matcher.weight_of(score)

    train_loss = student_loss(student(theta, x_train), y_train, teacher_soft_train, m)
    theta_new = _sgd_step(theta, train_loss, inner_lr)
    val_loss = F.cross_entropy(student(theta_new, x_val), y_val)
    val_loss.backward(inputs=list(matcher.parameters()))
    return {k: float(v.detach()) for k, v in
            (('train_loss', train_loss), ('val_loss', val_loss), ('m', m), ('score', score))}


def _sgd_step(params: dict[str, torch.Tensor], loss: torch.Tensor, lr: float) -> dict[str, torch.Tensor]:
    """theta - lr * grad, differentiable (create_graph) so later losses reach what the loss depended on."""
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
    return {n: p if g is None else p - lr * g for (n, p), g in zip(params.items(), grads)}


__all__ = ['MetaMatchingNetwork', 'meta_update', 'select_teacher', 'select_teacher_naive', 'select_teacher_top1',
           'soft_cross_entropy', 'student_loss']
