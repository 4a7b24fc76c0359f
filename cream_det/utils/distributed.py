"""The few collective operations a search step needs, no-ops on a single process.

All ranks must train the same path and hold the same board: the path is drawn on rank 0 and
broadcast, accuracies are averaged, and the images a new board entry keeps are rank 0's.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


def broadcast_(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """In-place broadcast from ``src`` (gloo and nccl both take the tensor where it lives)."""
    if is_dist():
        dist.broadcast(t, src)
    return t


def mean(value: float, device: torch.device | str = 'cpu') -> float:
    if not is_dist():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def average_grads_(params) -> None:
    """Average ``.grad`` over ranks for parameters outside DDP (the meta matching network)."""
    if not is_dist():
        return
    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)


def patient_group(days: float = 7.0) -> 'dist.ProcessGroup | None':
    """A gloo group (all ranks create it together) whose collectives wait ``days``, not the run's timeout.

    For the few places where the other ranks wait, on purpose, for work rank 0 does alone (the
    evolutionary search over a trained supernet: hours on ImageNet); the run's collective timeout
    (``env_cfg.dist_cfg.timeout``, docs/faults.md) is sized to catch a stalled rank within a step.
    ``None`` on a single process.
    """
    if not is_dist():
        return None
    import datetime
    return dist.new_group(backend='gloo', timeout=datetime.timedelta(days=days))


def barrier(group: 'dist.ProcessGroup | None') -> None:
    """``dist.barrier`` on ``group``; a no-op for ``None`` (a single process)."""
    if group is not None:
        dist.barrier(group=group)
