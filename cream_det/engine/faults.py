"""What a training process says when a fault ends it: one error naming where it stopped and what to resume from.

Three faults end a long run on the ranks that survive them (docs/faults.md):

- a **collective that times out** (another rank stalled: a hung NFS mount, a wedged GPU) or **loses its
  peer** (another rank died). torch raises a bare ``RuntimeError`` from gloo's C++ transport
  ("Timed out waiting 30000ms for recv operation") or a ``DistBackendError``; :func:`collective_error`
  turns it into a :class:`TrainingError` naming the collective (read off the traceback: the
  ``torch.distributed`` call, or DDP's gradient all-reduce when it came out of backward), the
  innermost caller outside torch, the iteration, the timeout and the last intact checkpoint;
- a **checkpoint that cannot be written** (:class:`WriteError` from the atomic writer): the message
  gains the last intact checkpoint, which the failed write left in place.

:func:`stop_cleanly` is the one place that does this, around ``runner.train()`` and what follows it.
"""
from __future__ import annotations

import contextlib
import re
import traceback
from pathlib import Path
from typing import Any, Iterator

from ..errors import TrainingError, WriteError

# the messages torch's backends raise for a collective that cannot complete, as bare RuntimeErrors
_TIMEOUT_MARKS = ('Timed out waiting', 'timed out', 'Watchdog caught collective operation timeout')
_PEER_MARKS = ('Connection reset by peer', 'Connection closed by peer', 'Broken pipe', 'Connection refused')


def last_checkpoint_note(work_dir: 'str | Path') -> str:
    """'the last intact checkpoint is X: --resume continues from it' (or that there is none)."""
    from ..models.checkpoint import latest_checkpoint
    ckpt = latest_checkpoint(work_dir, intact=True) if Path(work_dir).is_dir() else None
    if ckpt is None:
        return f'{work_dir} holds no intact checkpoint yet: rerun from the start'
    return f'the last intact checkpoint is {ckpt}: --resume continues from it'


def is_collective_failure(exc: BaseException) -> bool:
    """A collective that timed out or lost a peer (gloo's and NCCL's ways of saying so)."""
    import torch.distributed as dist
    if isinstance(exc, getattr(dist, 'DistError', ())):
        return True
    msg = str(exc)
    return isinstance(exc, RuntimeError) and any(m in msg for m in _TIMEOUT_MARKS + _PEER_MARKS) and \
        any(m in msg.lower() for m in ('gloo', 'nccl'))


def which_collective(exc: BaseException) -> str:
    """The collective the traceback was in and its innermost caller outside torch, in words."""
    frames = traceback.extract_tb(exc.__traceback__)
    in_torch = [('/torch/' in f.filename.replace('\\', '/')) for f in frames]
    c10d = [f for f in frames if f.filename.endswith('distributed_c10d.py')]
    if c10d:
        what = f'torch.distributed.{c10d[-1].name}'
    elif any('/torch/autograd/' in f.filename.replace('\\', '/') for f in frames):
        what = "DistributedDataParallel's gradient all-reduce (in backward)"
    else:
        what = 'a collective operation'
    outside = [f for f, t in zip(frames, in_torch) if not t]
    if outside:
        f = outside[-1]
        name = f.filename.replace('\\', '/')
        for root in ('/site-packages/', '/cream_det/'):
            if root in name:
                name = ('cream_det/' if root == '/cream_det/' else '') + name.split(root, 1)[1]
                break
        what += f', called from {name}:{f.lineno} ({f.name})'
    return what


def collective_error(exc: BaseException, *, iteration: int | None, timeout_s: float | None,
                     work_dir: 'str | Path') -> TrainingError:
    """The survivor's one error for a collective that timed out or lost its peer."""
    import torch.distributed as dist
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    msg = str(exc)
    timed_out = any(m in msg for m in _TIMEOUT_MARKS) or 'timeout' in type(exc).__name__.lower()
    where = f' after {iteration} iterations' if iteration is not None else ''
    if timed_out:
        ms = re.search(r'waiting (\d+) ?ms', msg)
        timeout_s = timeout_s or (int(ms.group(1)) / 1000 if ms else None)
        limit = f'{timeout_s:g} s' if timeout_s else 'the process group timeout'
        why = (f'got no answer from another rank within {limit} (env_cfg.dist_cfg.timeout): a rank stalled '
               '(hung file system, wedged GPU, stopped process) or died')
    else:
        why = 'lost its connection to another rank: that rank died'
    first = msg.strip().splitlines()[0][:300] if msg.strip() else type(exc).__name__
    return TrainingError(f'rank {rank}{where}: {which_collective(exc)} {why} [{first}]; '
                         f'{last_checkpoint_note(work_dir)} once every rank is healthy')


@contextlib.contextmanager
def stop_cleanly(runner: Any) -> Iterator[None]:
    """Turn the faults above, raised inside the block, into one error naming iteration and checkpoint."""
    try:
        yield
    except WriteError as e:
        err = WriteError(f'{e}; {last_checkpoint_note(runner.work_dir)} once the disk has room')
        err.errno = e.errno
        raise err from None
    except TrainingError:
        raise
    except Exception as e:
        if not is_collective_failure(e):
            raise
        raise collective_error(e, iteration=getattr(runner, 'iter', None), timeout_s=_timeout_s(runner),
                               work_dir=runner.work_dir) from None


def _timeout_s(runner: Any) -> float | None:
    import torch

    from .launch import process_group_args
    cfg = getattr(runner, 'cfg', None) or {}            # the process group was set up from it: it is valid
    dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg')
    return process_group_args(dist_cfg, torch.cuda.is_available())['timeout'].total_seconds()


__all__ = ['collective_error', 'is_collective_failure', 'last_checkpoint_note', 'stop_cleanly', 'which_collective']
