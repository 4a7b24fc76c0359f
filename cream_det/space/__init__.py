"""Search space → architecture → cost: the data model every later stage builds on."""
from .arch import Arch
from .codes import PathCodes, arch_cost
from .flops import Cost, CostTable, cost_table
from .sampler import ArchSampler
from .spec import CREAM_OPS, CREAM_SPACE, Op, SearchSpace, StageSpec, get_space, register_space
from .zoo import ZOO, as_arch, get_arch

__all__ = ['Arch', 'ArchSampler', 'as_arch', 'Cost', 'CostTable', 'arch_cost', 'cost_table', 'CREAM_OPS',
           'CREAM_SPACE', 'Op', 'PathCodes', 'SearchSpace', 'StageSpec', 'get_space', 'register_space', 'ZOO',
           'get_arch']
