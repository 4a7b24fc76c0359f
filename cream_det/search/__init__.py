"""Search algorithms, engine-free: the prioritized board, the meta matching network, evolution, ranking."""
from .board import BoardEntry, PrioritizedBoard
from .evolution import EvolutionResult, EvolutionSearch, evolution_search
from .matching import (MetaMatchingNetwork, entry_scores, meta_update, select_teacher, select_teacher_top1,
                       soft_cross_entropy, student_loss)
from .ranking import kendall_tau
from .combination import Combination, best_combination
from .cream import Cream  # (registers the 'cream' strategy)
from . import dna  # noqa: F401,E402  (registers the 'dna' strategy)
from .mixpath import MixPath  # (registers the 'mixpath' strategy)

__all__ = ['BoardEntry', 'PrioritizedBoard', 'EvolutionResult', 'EvolutionSearch', 'evolution_search',
           'MetaMatchingNetwork', 'entry_scores', 'meta_update', 'select_teacher', 'select_teacher_top1', 'Cream',
           'soft_cross_entropy', 'student_loss', 'kendall_tau', 'Combination', 'best_combination', 'MixPath']
