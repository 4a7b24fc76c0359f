"""Evolutionary search under a MACs budget, and optionally a latency one (SPOS-style), engine-free.

A generation evaluates its candidates (all at once: the ``evaluate`` callable receives a batch of
encoded paths and returns their scores), keeps the ``parents`` best ever seen, and breeds the next
generation from them: mutations (each layer's op redrawn with ``mutation_prob``) and uniform
crossovers, topped up with random paths. Every candidate is costed with the vectorised MACs table
(and a latency table's predicted ms, with ``latency_range``) and kept only inside the ranges (the
sampler's :class:`~cream_det.space.budget.Budget`); a path is never evaluated twice.

With ``max_paths=m`` the candidates are multi-path (MixPath) archs as bitmask codes
(:meth:`Arch.encode_mask`): a mutation redraws a layer's whole op set (width k ~ U{1..m}, then k
distinct ops), a crossover takes each layer's op set from either parent, random candidates come
from the multi-path sampler, and the MACs table is the multi-path one. Everything else is shared.

The whole search state (generation, pending candidates, every evaluated path and score, the RNG)
is a plain dict of lists and ints, handed to ``on_generation`` after each generation; passing it
back as ``init_state`` resumes the search exactly where it stopped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..space import Arch, ArchSampler, SearchSpace
from ..space.codes import PathCodes

Evaluate = Callable[[np.ndarray], np.ndarray]
#: trials drawn per wanted child before a generation settles for fewer
_TRIALS_PER_CHILD = 10


@dataclass
class EvolutionResult:
    best_code: np.ndarray           # Arch.encode() (encode_mask() when multipath) of the best path evaluated
    best_score: float
    best_macs: int
    top_codes: np.ndarray           # the final parents, best first
    top_scores: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)   # per generation: best, top-k mean, evaluated
    num_evaluated: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    multipath: bool = False         # codes are op-set bitmasks
    best_latency: float | None = None   # predicted ms of the best path (with a latency table)

    def best_arch(self, space: SearchSpace, resolution: int, num_classes: int) -> Arch:
        codes = PathCodes(space, len(space.ops) if self.multipath else None)
        return Arch.from_code(self.best_code, codes, resolution, num_classes)


class EvolutionSearch:
    """The search loop's state and one generation at a time (:func:`evolution_search` drives it)."""

    def __init__(self, space: SearchSpace, resolution: int, num_classes: int, depths: Sequence[int],
                 macs_range: tuple[float, float], *, population: int = 50, parents: int = 10,
                 mutation_prob: float = 0.1, crossover_num: int = 25, mutation_num: int = 25, seed: int = 0,
                 max_paths: int | None = None, keep_widths: bool = False, latency_table: Any = None,
                 latency_range: tuple[float, float] | None = None) -> None:
        if min(population, parents) < 1 or min(crossover_num, mutation_num) < 0 or not 0 <= mutation_prob <= 1:
            raise ConfigError('evolution: population and parents must be >= 1, crossover_num and mutation_num '
                              f'>= 0 and mutation_prob in [0, 1] (got {population}, {parents}, {crossover_num}, '
                              f'{mutation_num}, {mutation_prob})')
        self.population, self.parents = population, parents
        self.mutation_prob, self.crossover_num, self.mutation_num = mutation_prob, crossover_num, mutation_num
        self.rng = np.random.default_rng(seed)
        # the sampler validates depths and range (SpaceError if infeasible) and shares our RNG stream
        # (its max_paths decides the codes: op indices with -1 absent, or op-set masks with 0 absent)
        # keep_widths: random multi-path candidates by whole-draw rejection (False, this search's
        # behaviour so far) or with uniform layer widths (True; see ArchSampler)
        self.sampler = ArchSampler(space, resolution, num_classes, depths=depths, macs_range=macs_range,
                                   max_paths=max_paths, keep_widths=keep_widths, latency_table=latency_table,
                                   latency_range=latency_range)
        self.sampler.rng = self.rng
        self.table = self.sampler.table
        self.lo, self.hi = self.sampler.macs_range
        self.dtype = self.sampler.code_dtype
        self.config = {'space': space.name, 'resolution': resolution, 'num_classes': num_classes,
                       'depths': list(self.sampler.depths), 'macs_range': [self.lo, self.hi]}
        if max_paths is not None:
            self.config['max_paths'] = int(max_paths)
        if self.sampler.latency_range is not None:
            self.config['latency_range'] = list(self.sampler.latency_range)
        self.generation = 0
        self.candidates = np.zeros((0, space.max_layers), dtype=self.dtype)
        self.codes = np.zeros((0, space.max_layers), dtype=self.dtype)   # every evaluated path ...
        self.scores = np.zeros(0, dtype=np.float64)                       # ... and its score
        self.history: list[dict[str, Any]] = []
        self._seen: set[bytes] = set()

    # ---- one generation ----------------------------------------------------------------------------
    def start(self) -> None:
        self.candidates = self._fill(np.zeros((0, self.codes.shape[1]), self.dtype), self.population)

    def step(self, evaluate: Evaluate) -> None:
        """Evaluate the pending candidates, update the parents and breed the next generation.

        The next generation is bred even after the last one a caller asked for, so a finished
        search's state can be resumed with more generations.
        """
        self._evaluate(evaluate, self.candidates)
        top = self.top_k()
        self.history.append({'generation': self.generation, 'best': float(self.scores[top[0]]),
                             'top_k_mean': float(self.scores[top].mean()), 'evaluated': int(len(self.scores))})
        self.generation += 1
        self.candidates = self._breed(self.codes[top])

    def _evaluate(self, evaluate: Evaluate, codes: np.ndarray) -> None:
        if not len(codes):
            return
        scores = np.asarray(evaluate(codes.copy()), dtype=np.float64).reshape(-1)
        if scores.shape != (len(codes),):
            raise ConfigError(f'evaluate returned {scores.size} scores for {len(codes)} paths')
        self.codes = np.concatenate([self.codes, codes])
        self.scores = np.concatenate([self.scores, scores])

    def top_k(self) -> np.ndarray:
        """Indices of the best evaluated paths, best first (ties: earlier evaluated first)."""
        order = np.argsort(-self.scores, kind='stable')
        return order[:self.parents]

    def _breed(self, parents: np.ndarray) -> np.ndarray:
        kids = self._fill(np.zeros((0, parents.shape[1]), self.dtype), self.mutation_num, self._mutants(parents))
        kids = self._fill(kids, len(kids) + self.crossover_num, self._crossovers(parents))
        return self._fill(kids, self.population)

    # ---- proposals ----------------------------------------------------------------------------------
    def _mutants(self, parents: np.ndarray) -> Callable[[int], np.ndarray]:
        def draw(n: int) -> np.ndarray:
            kids = parents[self.rng.integers(len(parents), size=n)]
            redraw = (self.rng.random(kids.shape) < self.mutation_prob) & (kids != self.sampler.absent)
            kids[redraw] = self.sampler.random_layers(int(redraw.sum()))
            return kids
        return draw

    def _crossovers(self, parents: np.ndarray) -> Callable[[int], np.ndarray]:
        def draw(n: int) -> np.ndarray:
            a = parents[self.rng.integers(len(parents), size=n)]
            b = parents[self.rng.integers(len(parents), size=n)]
            return np.where(self.rng.random(a.shape) < 0.5, a, b)      # same depths: layers line up
        return draw

    def _fill(self, kids: np.ndarray, target: int, draw: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
        """Append new, in-budget, never-seen paths from ``draw`` (default: random) until ``target``."""
        want = target - len(kids)
        if want <= 0:
            return kids
        trials = draw(want * _TRIALS_PER_CHILD) if draw else self.sampler.sample_codes(want * _TRIALS_PER_CHILD)
        trials = trials[self.sampler.inside(trials)]
        fresh = []
        for code in trials:
            key = code.tobytes()
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(code)
                if len(fresh) == want:
                    break
        return np.concatenate([kids, np.asarray(fresh, dtype=self.dtype).reshape(-1, kids.shape[1])])

    # ---- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain lists/ints/floats (loadable with ``torch.load(weights_only=True)`` or JSON)."""
        return {'config': self.config, 'generation': self.generation, 'candidates': self.candidates.tolist(),
                'codes': self.codes.tolist(), 'scores': self.scores.tolist(), 'history': list(self.history),
                'rng': self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state['config'] != self.config:
            raise ConfigError(f"evolution: cannot resume a search of {state['config']} as one of {self.config}")
        width = self.codes.shape[1]
        self.generation = int(state['generation'])
        self.candidates = np.asarray(state['candidates'], dtype=self.dtype).reshape(-1, width)
        self.codes = np.asarray(state['codes'], dtype=self.dtype).reshape(-1, width)
        self.scores = np.asarray(state['scores'], dtype=np.float64)
        self.history = list(state['history'])
        self.rng.bit_generator.state = state['rng']
        self._seen = {c.tobytes() for c in np.concatenate([self.codes, self.candidates])}

    def result(self) -> EvolutionResult:
        top = self.top_k()
        best = self.codes[top[0]]
        lat = self.sampler.latency_table
        return EvolutionResult(best.copy(), float(self.scores[top[0]]), int(self.table.macs_of(best)),
                               self.codes[top].copy(), self.scores[top].copy(), list(self.history),
                               len(self.scores), self.state_dict(), self.sampler.codes.multipath,
                               None if lat is None or self.sampler.codes.multipath else float(lat.predict_codes(best)))


def run_generations(search: 'EvolutionSearch', evaluate: Evaluate, generations: int,
                    on_generation: Callable[[int, dict[str, Any]], None] | None = None,
                    init_state: dict[str, Any] | None = None) -> None:
    """Start (or resume from ``init_state``) and run ``search`` up to ``generations``, reporting each one;
    stops early when no unseen candidate is left to propose. Shared by every population search."""
    if init_state is not None:
        search.load_state_dict(init_state)
    else:
        search.start()
    while search.generation < generations and len(search.candidates):
        gen = search.generation
        search.step(evaluate)
        if on_generation is not None:
            on_generation(gen, search.state_dict())


def evolution_search(evaluate: Evaluate, space: SearchSpace, resolution: int, num_classes: int,
                     depths: Sequence[int], macs_range: tuple[float, float], population: int = 50,
                     generations: int = 20, parents: int = 10, mutation_prob: float = 0.1, crossover_num: int = 25,
                     mutation_num: int = 25, seed: int = 0,
                     on_generation: Callable[[int, dict[str, Any]], None] | None = None,
                     init_state: dict[str, Any] | None = None, max_paths: int | None = None,
                     latency_table: Any = None, latency_range: tuple[float, float] | None = None) -> EvolutionResult:
    """Search the paths of a supernet (``depths``) inside ``macs_range`` (and ``latency_range`` of
    ``latency_table``'s predicted ms) for the best ``evaluate`` score.

    ``evaluate`` maps an ``(N, slots)`` int8 array of encoded paths to N scores (higher is better),
    e.g. the supernet's validation accuracy of each path. ``on_generation(gen, state)`` runs after
    each generation; ``init_state`` (such a state) resumes. Stops early if the budget holds no
    unseen path to propose. ``max_paths=m`` searches multi-path archs (bitmask codes) whose
    layers run 1..m ops.
    """
    search = EvolutionSearch(space, resolution, num_classes, depths, macs_range, population=population,
                             parents=parents, mutation_prob=mutation_prob, crossover_num=crossover_num,
                             mutation_num=mutation_num, seed=seed, max_paths=max_paths,
                             latency_table=latency_table, latency_range=latency_range)
    run_generations(search, evaluate, generations, on_generation, init_state)
    if not len(search.scores):
        raise ConfigError('evolution: no path was evaluated (generations must be >= 1)')
    return search.result()


__all__ = ['EvolutionResult', 'EvolutionSearch', 'evolution_search', 'run_generations']
