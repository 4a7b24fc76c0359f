"""Meta matching network (Cream, Sec. 3.2): which prioritized path should teach this student, and how much.

For a student path and each board entry, the matcher looks at how the student's predictions on
the entry's stored images differ from the soft targets stored with the entry (the softmax of the
*teacher* that taught the path when it entered the board, as in the authors' code, or the path's own
with ``board_targets='own'``)::

    score_k = M_phi( softmax(student(images_k)) - soft_k )        # M_phi: one Linear layer

The best-scoring entry teaches, with matching weight ``m = sigmoid(-score)``, in the loss::

    L(theta; m) = ( m * KD(student, teacher) + (2 - m) * CE(student, labels) ) / 2

The matcher is learnt by a second-order (meta) step: simulate one SGD step of the student,
``theta' = theta - lr * grad_theta L_inner(theta; m(phi))``, and descend the cross-entropy of the
updated student on held-out images with respect to phi, through the simulated step:
``d L_val(theta'(phi)) / d phi``. :func:`meta_update` computes exactly that chain rule with
``torch.func.functional_call``, leaving the supernet's weights and BatchNorm statistics untouched.
(The authors' code also lets the student loss reach phi through m at every step; the Cream
strategy offers that with ``matcher_grad``; see docs/fidelity.md.)

Selection and the meta update score an entry the same way (:func:`student_probs`: with BatchNorm in
train mode each entry's 4 images are their own batch, as in the authors' loop of one forward per
entry, computed as one forward of every entry's images with per-entry batch statistics): the same
entry gets the same m in both.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from .board import BoardEntry, PrioritizedBoard
from .grouped_bn import per_group_batch_norm

if TYPE_CHECKING:
    from ..models.supernet import PathLike

MATCHER_INITS = ('uniform', 'torch')


class MetaMatchingNetwork(nn.Module):
    """M_phi: scores a (student, teacher) pair from the student's error on the teacher's slice.

    Args:
        init: ``'uniform'`` (the authors' init: weights U(-1, 1), bias 0; scores then spread over
            several units, so m starts far from a constant 0.5) or ``'torch'`` (``nn.Linear``'s
            default, U(+-1/sqrt(fan_in)): about +-0.016 for 1000 classes x 4 images, m ~ 0.5 everywhere).
    """

    def __init__(self, num_classes: int, slice_size: int = 4, init: str = 'uniform') -> None:
        super().__init__()
        if init not in MATCHER_INITS:
            raise ValueError(f"matcher init={init!r}: one of {', '.join(MATCHER_INITS)}")
        self.num_classes, self.slice_size = num_classes, slice_size
        self.fc = nn.Linear(num_classes * slice_size, 1)
        if init == 'uniform':
            with torch.no_grad():
                self.fc.weight.uniform_(-1.0, 1.0)
                self.fc.bias.zero_()

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
SELECTIONS = ('per_entry', 'batched')


def student_probs(student_logits_fn: LogitsFn, entries: Sequence[BoardEntry], device: torch.device,
                  selection: str = 'per_entry') -> torch.Tensor:
    """The student's softmax on every entry's stored images, ``(entries, slice, classes)``, without gradient.

    One forward of all entries' images. ``'per_entry'``: every train-mode BatchNorm normalises each
    entry's images by their own mean and variance (:func:`~.grouped_bn.per_group_batch_norm`), so
    each entry is scored exactly as when it is scored alone (the authors' loop, and the meta
    update), and the running statistics are not touched by the grouped layers. ``'batched'``: one
    plain forward, whose train-mode statistics pool every entry (the same as ``'per_entry'`` in
    eval mode only).
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection={selection!r}: one of {', '.join(SELECTIONS)}")
    sizes = {len(e.images) for e in entries}
    if len(sizes) > 1:
        raise ValueError(f'board entries hold different numbers of images ({sorted(sizes)}): the student scores '
                         'every entry on the same number (slice_size)')
    images = torch.cat([e.images for e in entries]).to(device)
    with torch.no_grad():
        if selection == 'batched':
            logits = student_logits_fn(images)
        else:
            with per_group_batch_norm(len(entries)):
                logits = student_logits_fn(images)
    return F.softmax(logits, dim=1).view(len(entries), -1, logits.shape[1])


def entry_scores(student_logits_fn: LogitsFn, board: PrioritizedBoard | Sequence[BoardEntry],
                 matcher: MetaMatchingNetwork, selection: str = 'per_entry') -> torch.Tensor:
    """The matcher's score of every board entry for this student.

    The student's predictions are constants; the scores carry a graph to the matcher's parameters
    when grad mode is on, so a loss built from ``m`` can train the matcher (``matcher_grad``).
    """
    entries = list(board)
    if not entries:
        raise LookupError('cannot select a teacher: the prioritized board is empty')
    probs = student_probs(student_logits_fn, entries, _device(matcher), selection)
    return matcher(probs, torch.stack([e.soft.to(probs) for e in entries]))


def select_teacher(student_logits_fn: LogitsFn, board: PrioritizedBoard | Sequence[BoardEntry],
                   matcher: MetaMatchingNetwork, selection: str = 'per_entry') -> tuple[int, float]:
    """Index of the best-matching board entry and its weight m (the chosen entry's: the authors'
    code takes the score of the last entry it looped over, a bug)."""
    with torch.no_grad():
        scores = entry_scores(student_logits_fn, board, matcher, selection)
    index = int(torch.argmax(scores))
    return index, float(matcher.weight_of(scores[index]))


def select_teacher_top1(board: PrioritizedBoard | Sequence[BoardEntry]) -> tuple[int, float]:
    """The paper's 'top1' ablation: the best board path teaches with a fixed m = 0.5."""
    if not len(board):
        raise LookupError('cannot select a teacher: the prioritized board is empty')
    return 0, 0.5


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device      # the matcher lives where the student does


# ---- the student's loss -----------------------------------------------------------------------------
def soft_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
    """KD term: cross-entropy of the student against a teacher's softmax."""
    return -(soft_targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def student_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_soft: torch.Tensor,
                 m: float | torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """(m * KD + (2 - m) * CE) / 2: m in (0, 1) trades the teacher against the labels."""
    kd = soft_cross_entropy(logits, teacher_soft)
    ce = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    return (m * kd + (2 - m) * ce) / 2


# ---- the meta (second-order) update -----------------------------------------------------------------
INNER_LOSSES = ('blended', 'kd')


def meta_update(supernet: nn.Module, arch: 'PathLike', matcher: MetaMatchingNetwork, teacher_entry: BoardEntry,
                x_train: torch.Tensor, y_train: torch.Tensor, teacher_soft_train: torch.Tensor,
                x_val: torch.Tensor, y_val: torch.Tensor, inner_lr: float, inner_loss: str = 'blended',
                label_smoothing: float = 0.0, return_inner_grads: bool = False) -> dict[str, object]:
    """Accumulate d L_val(theta'(phi)) / d phi into ``matcher``'s ``.grad``; the caller steps its optimizer.

    1. m(phi) from the student's softmax on the teacher entry's stored images, computed as
       selection computes it (:func:`student_probs`; the student is a constant here);
    2. L_inner = the student loss with m(phi) (``'blended'``) or ``m * KD`` alone (``'kd'``, the
       authors' inner loss);
    3. theta' = theta - inner_lr * grad_theta L_inner over the path's parameters, keeping the graph;
    4. L_val = CE(student_theta'(x_val), y_val), back-propagated into phi only (the full chain,
       through every parameter of the path; the authors' code follows only the stem's weight).

    Every forward runs on cloned BatchNorm buffers, so the supernet's running statistics, weights
    and ``.grad`` are exactly as before. ``return_inner_grads`` adds ``'inner_grads'``: the detached
    ``grad_theta L_inner`` by parameter name, for a caller that also takes the real student step.
    ``supernet`` must offer ``named_path_parameters(arch)`` and ``named_path_buffers(arch)``.
    """
    if inner_loss not in INNER_LOSSES:
        raise ValueError(f"inner_loss={inner_loss!r}: one of {', '.join(INNER_LOSSES)}")
    theta = dict(supernet.named_path_parameters(arch))
    buffers = {n: b.clone() for n, b in supernet.named_path_buffers(arch)}

    def student(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(supernet, {**params, **buffers}, (x, arch))

    probs = student_probs(lambda x: student(theta, x), [teacher_entry], x_train.device)[0]
    score = matcher(probs, teacher_entry.soft.to(probs))
    m = matcher.weight_of(score)

    logits = student(theta, x_train)
    if inner_loss == 'kd':
        train_loss = m * soft_cross_entropy(logits, teacher_soft_train)
    else:
        train_loss = student_loss(logits, y_train, teacher_soft_train, m, label_smoothing)
    grads = torch.autograd.grad(train_loss, list(theta.values()), create_graph=True, allow_unused=True)
    theta_new = {n: p if g is None else p - inner_lr * g for (n, p), g in zip(theta.items(), grads)}
    val_loss = F.cross_entropy(student(theta_new, x_val), y_val, label_smoothing=label_smoothing)
    val_loss.backward(inputs=list(matcher.parameters()))
    out: dict[str, object] = {k: float(v.detach()) for k, v in
                              (('train_loss', train_loss), ('val_loss', val_loss), ('m', m), ('score', score))}
    if return_inner_grads:
        out['inner_grads'] = {n: g.detach() for n, g in zip(theta, grads) if g is not None}
    return out


__all__ = ['MetaMatchingNetwork', 'meta_update', 'select_teacher', 'select_teacher_top1', 'entry_scores',
           'student_probs', 'soft_cross_entropy', 'student_loss']
