"""Glue to mmengine: launching, configs and the Runner for every stage."""
from . import atomic_backend  # noqa: F401  (atomic checkpoint writes)
from . import optim  # noqa: F401  (GroupedOptimWrapperConstructor)
from . import finite_loss  # noqa: F401  (FiniteLossHook)
from .launch import adjust_launch, init_distributed
from .run import build_runner, check_data, load_config, test, train

__all__ = ['adjust_launch', 'init_distributed', 'build_runner', 'check_data', 'load_config', 'test', 'train']
