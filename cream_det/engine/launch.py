"""Launching mmengine's Runner on one process or under ``torchrun``, with or without CUDA.

mmengine's ``pytorch`` launcher assumes GPUs: it calls ``torch.cuda.set_device`` and wraps the model
in DDP with ``device_ids=[LOCAL_RANK]``, both of which fail on a CPU-only machine. So that the same
command works on a laptop, in CI (2 CPU processes) and on a GPU cluster, the launcher is chosen from
the environment: ``torchrun`` sets ``WORLD_SIZE``; without CUDA the process group is initialised
here with gloo (the Runner then skips its own init) and DDP gets ``device_ids=None``.
A user never edits a config for this.
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def world_size_from_env() -> int:
    return int(os.environ.get('WORLD_SIZE', '1'))


def init_distributed() -> bool:
    """Initialise the default process group when launched by torchrun; returns whether distributed."""
    if world_size_from_env() <= 1:
        return False
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', '0')))
            dist.init_process_group('nccl')
        else:
            dist.init_process_group('gloo')
    return True


def adjust_launch(cfg: Any) -> Any:
    """Set ``launcher``, ``env_cfg.dist_cfg`` and (on CPU) ``model_wrapper_cfg`` in an mmengine Config."""
    distributed = init_distributed()
    cfg.launcher = 'pytorch' if distributed else 'none'
    if not distributed:
        return cfg
    env = cfg.get('env_cfg') or {}
    env = dict(env)
    env['dist_cfg'] = dict(env.get('dist_cfg') or {}, backend='nccl' if torch.cuda.is_available() else 'gloo')
    cfg.env_cfg = env
    if not torch.cuda.is_available():
        wrapper = dict(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', bool(cfg.get('find_unused_parameters', False)))
        wrapper['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper
    return cfg
