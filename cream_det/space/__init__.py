"""Search space → architecture → cost: the data model every later stage builds on."""
from .arch import Arch
from .flops import Cost, CostTable, arch_cost, cost_table
from .spec import CREAM_OPS, CREAM_SPACE, Op, SearchSpace, StageSpec, get_space, register_space
from .zoo import ZOO, as_arch, get_arch

__all__ = ['Arch', 'as_arch', 'Cost', 'CostTable', 'arch_cost', 'cost_table', 'CREAM_OPS', 'CREAM_SPACE', 'Op',
           'SearchSpace', 'StageSpec', 'get_space', 'register_space', 'ZOO', 'get_arch']
from .codes import PathCodes  # noqa: E402
from .sampler import ArchSampler  # noqa: E402

__all__ += ['ArchSampler', 'PathCodes']
