"""Launching mmengine's Runner on one process or under ``torchrun``, with or without CUDA.

mmengine's ``pytorch`` launcher assumes GPUs: it calls ``torch.cuda.set_device`` and wraps the model
in DDP with ``device_ids=[LOCAL_RANK]``, both of which fail on a CPU-only machine. So that the same
command works on a laptop, in CI (2 CPU processes) and on a GPU cluster, the launcher is chosen from
the environment: ``torchrun`` sets ``WORLD_SIZE``; the process group is initialised here (the Runner
then skips its own init) and, without CUDA, DDP gets ``device_ids=None``. A user never edits a
config for this.

The process group is initialised from the config's ``env_cfg.dist_cfg`` as mmengine's own
``init_dist`` reads it (:func:`process_group_args`): ``backend``, ``timeout`` in seconds, and any other
``init_process_group`` keyword. Two differences, both so that one config runs everywhere: a CPU
machine runs gloo whatever backend the config names (mmdet's configs all say ``nccl``), and a config
without a timeout gets :data:`DEFAULT_TIMEOUT_S` (docs/faults.md says why).
"""
from __future__ import annotations

import datetime
import os
from typing import Any, Mapping

import torch
import torch.distributed as dist

from ..errors import ConfigError

#: Seconds a rank waits in a collective before giving up (``env_cfg.dist_cfg.timeout`` overrides it).
#: Long enough for the slowest legitimate wait of a long run — rank 0 writing a checkpoint or
#: scoring COCO while the others wait — short enough that a stalled node frees every other GPU
#: within half an hour. It is gloo's own default and mmengine's documented example; NCCL's own
#: default (10 min) is shorter than a COCO evaluation on a slow disk.
DEFAULT_TIMEOUT_S = 1800


def world_size_from_env() -> int:
    return int(os.environ.get('WORLD_SIZE', '1'))


def process_group_args(dist_cfg: Mapping[str, Any] | None, cuda: bool) -> dict[str, Any]:
    """``init_process_group``'s keyword arguments from mmengine's ``env_cfg.dist_cfg``.

    Mirrors mmengine's ``init_dist``/``_init_dist_pytorch``: ``backend`` (default ``nccl`` on CUDA),
    ``timeout`` in seconds (made a ``timedelta``), ``init_backend`` (only ``'torch'``; mmengine's
    deepspeed and colossalai launches are refused by name), everything else passed through (e.g.
    ``init_method``, ``pg_options``, ``device_id``). Without CUDA the backend is gloo.
    """
    args = dict(dist_cfg or {})
    init_backend = args.pop('init_backend', 'torch')
    if init_backend != 'torch':
        raise ConfigError(f"env_cfg.dist_cfg.init_backend={init_backend!r}: cream_det's launcher initialises the "
                          "process group with torch.distributed only (init_backend='torch')")
    backend = args.pop('backend', None) or 'nccl'
    if not cuda:
        backend = 'gloo'
    timeout = args.pop('timeout', None)
    timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
    try:
        seconds = float(timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else timeout)
    except (TypeError, ValueError):
        raise ConfigError(f'env_cfg.dist_cfg.timeout={timeout!r}: give the collective timeout in seconds, '
                          f'e.g. dist_cfg=dict(timeout={DEFAULT_TIMEOUT_S})') from None
    if not seconds > 0:
        raise ConfigError(f'env_cfg.dist_cfg.timeout={timeout!r}: must be a positive number of seconds')
    return dict(args, backend=backend, timeout=datetime.timedelta(seconds=seconds))


def init_distributed(dist_cfg: Mapping[str, Any] | None = None) -> bool:
    """Initialise the default process group when launched by torchrun; returns whether distributed."""
    if world_size_from_env() <= 1:
        return False
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        args = process_group_args(dist_cfg, cuda)
        if cuda:
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', '0')))
        store = None if 'init_method' in args else _restart_store(args['timeout'])
        if store is not None:
            args.update(store=store, rank=int(os.environ['RANK']), world_size=world_size_from_env())
        dist.init_process_group(**args)
    return True


def _restart_store(timeout: datetime.timedelta) -> Any:
    """The process group's store after a torchrun ``--max-restarts`` restart: a prefix of its own.

    torchrun's static rendezvous (``--master_addr``/``--master_port``, what ``tools/dist_train.sh``
    uses) keeps one store across restarts, and the failed attempt's process-group keys are still in
    it: a restarted rank may read a dead peer's address before the new peer overwrites it ("Gloo
    connectFullMesh failed ... Connection refused", seen in the restart test). ``None`` for a first
    attempt, or where torchrun's agent does not serve the store.
    """
    attempt = int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') or 0)
    if attempt == 0 or os.environ.get('TORCHELASTIC_USE_AGENT_STORE') != 'True':
        return None
    store = dist.TCPStore(os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']), world_size_from_env(),
                          is_master=False, timeout=timeout)
    return dist.PrefixStore(f'cream_det/restart_{attempt}', store)


def adjust_launch(cfg: Any) -> Any:
    """Set ``launcher``, ``env_cfg.dist_cfg`` and (on CPU) ``model_wrapper_cfg`` in an mmengine Config."""
    env = dict(cfg.get('env_cfg') or {})
    distributed = init_distributed(env.get('dist_cfg'))
    cfg.launcher = 'pytorch' if distributed else 'none'
    if not distributed:
        return cfg
    env['dist_cfg'] = dict(env.get('dist_cfg') or {}, backend=dist.get_backend())
    cfg.env_cfg = env
    if not torch.cuda.is_available():
        wrapper = dict(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', bool(cfg.get('find_unused_parameters', False)))
        wrapper['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper
    return cfg
