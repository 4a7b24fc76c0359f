"""NSGA-II over (inherited top-1, MACs or predicted latency): MixPath's final search, engine-free.

MixPath (Chu et al.) searches its trained supernet with NSGA-II for accuracy and FLOPs together
and reports a Pareto front, not one arch. This is the algorithm of Deb et al. (2002) on the
supernet's encoded paths:

- the population (``population`` paths) is ranked by non-dominated sorting of the objectives
  (maximise top-1, minimise MACs), ties inside a front broken by crowding distance; with a latency
  table and ``latency_range`` (single-path searches; this project's extension) the second objective
  is the table's predicted latency instead: a latency–accuracy front, the pick inside both ranges;
- parents are drawn by binary tournament (lower front wins, then larger crowding distance);
- a child is a uniform crossover of two parents (with ``crossover_prob``, else a copy of the
  first) whose layers are each redrawn with ``mutation_prob`` (a multi-path layer redraws its whole
  op set); children are new paths inside ``macs_range`` (topped up with random ones);
- the next population is the best ``population`` of parents and children (elitist, μ + λ).

It reuses :class:`~cream_det.search.evolution.EvolutionSearch` for everything that is not the
selection (codes of either kind, the MACs table, never evaluating a path twice, the RNG), and its
state is a plain dict, so a killed search resumes where it stopped.

Why not ``pymoo``: its NSGA-II needs custom sampling, crossover, mutation and duplicate
elimination for these codes anyway (only the ~40 lines of sorting and crowding below would be
reused), pymoo 0.6.2 pulls ``autograd``, ``cma``, ``moocore`` (with ``cffi``), ``alive-progress``,
``Deprecated`` and ``scipy`` into the environment, and it resumes by pickling the whole algorithm
object, where every search state here is plain lists that ``torch.load(weights_only=True)`` reads.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..space import Arch, SearchSpace
from ..space.sampler import path_budget
from ..utils.io import atomic_write_bytes, atomic_write_text, png_bytes
from .evolution import EvolutionSearch, run_generations

Evaluate = Callable[[np.ndarray], np.ndarray]
PARETO_FILE = 'pareto.json'
PLOT_FILE = 'pareto.png'


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether objective vector ``a`` dominates ``b`` (all objectives minimised)."""
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_sort(objectives: np.ndarray) -> np.ndarray:
    """Front index of each row of ``objectives`` (N, M), all minimised: 0 is the non-dominated set.

    Deb's fast non-dominated sort, O(M N^2): populations here are tens to hundreds.
    """
    f = np.asarray(objectives, dtype=np.float64)
    n = len(f)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    le = np.all(f[:, None, :] <= f[None, :, :], axis=2)
    lt = np.any(f[:, None, :] < f[None, :, :], axis=2)
    dom = le & lt                                # dom[i, j]: i dominates j
    count = dom.sum(axis=0)                      # how many dominate j
    rank = np.full(n, -1, dtype=np.int64)
    current = np.flatnonzero(count == 0)
    r = 0
    while len(current):
        rank[current] = r
        count = count - dom[current].sum(axis=0)
        count[rank >= 0] = -1
        current = np.flatnonzero(count == 0)
        r += 1
    return rank


def crowding_distance(objectives: np.ndarray) -> np.ndarray:
    """Deb's crowding distance of each point of one front (boundary points: infinity)."""
    f = np.asarray(objectives, dtype=np.float64)
    n, m = f.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(f[:, j], kind='stable')
        span = f[order[-1], j] - f[order[0], j]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (f[order[2:], j] - f[order[:-2], j]) / span
    return dist


def survivors(objectives: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` rows NSGA-II keeps: whole fronts in order, the last one cut by crowding."""
    rank = non_dominated_sort(objectives)
    keep: list[int] = []
    for r in range(int(rank.max()) + 1 if len(rank) else 0):
        front = np.flatnonzero(rank == r)
        if len(keep) + len(front) <= k:
            keep.extend(front.tolist())
            continue
        cd = crowding_distance(objectives[front])
        order = np.argsort(-cd, kind='stable')
        keep.extend(front[order[:k - len(keep)]].tolist())
        break
    return np.asarray(keep, dtype=np.int64)


@dataclass
class ParetoResult:
    front_codes: np.ndarray         # the non-dominated paths among every evaluated one, cheapest first
    front_scores: np.ndarray
    front_macs: np.ndarray
    pick: int | None                # row of the front: best score inside the ranges (None: none inside)
    codes: np.ndarray               # every evaluated path ...
    scores: np.ndarray              # ... its score ...
    macs: np.ndarray                # ... and its MACs
    best_in_range: int | None       # row of ``codes``: best score inside the range (the pick's fallback)
    history: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    multipath: bool = False
    objective: str = 'macs'                     # the front's cost: 'macs' or 'latency' (predicted ms)
    latency: np.ndarray | None = None           # predicted ms of every evaluated path (with a latency table)
    front_latency: np.ndarray | None = None

    def cost(self, front: bool = False) -> np.ndarray:
        """The front's cost of every evaluated path (or of the front's): MACs or predicted ms."""
        if self.objective == 'latency':
            return self.front_latency if front else self.latency
        return self.front_macs if front else self.macs

    @property
    def best_code(self) -> np.ndarray:
        """The chosen path: the front's best inside the range, else the best evaluated inside it."""
        if self.pick is not None:
            return self.front_codes[self.pick]
        if self.best_in_range is None:
            raise ConfigError('NSGA-II evaluated no path inside the MACs (and latency) range')
        return self.codes[self.best_in_range]


class NSGA2Search(EvolutionSearch):
    """NSGA-II's loop state, one generation at a time (:func:`nsga2_search` drives it).

    Args:
        pareto_range: window of the front's cost the candidates are drawn from (``None``: ``macs_range``,
            or ``latency_range`` in ms for a latency front); the final pick is always inside both ranges.
        latency_table, latency_range: a latency table and a range of predicted ms: the front is then
            accuracy vs predicted latency (single-path codes only).
        population, mutation_prob, crossover_prob, seed, max_paths: see the module docstring.
    """

    def __init__(self, space: SearchSpace, resolution: int, num_classes: int, depths: Sequence[int],
                 macs_range: tuple[float, float], *, population: int = 50, mutation_prob: float = 0.1,
                 crossover_prob: float = 0.9, seed: int = 0, max_paths: int | None = None,
                 pareto_range: tuple[float, float] | None = None, latency_table: Any = None,
                 latency_range: tuple[float, float] | None = None) -> None:
        if population < 2 or not 0 <= crossover_prob <= 1:
            raise ConfigError(f'nsga2: population >= 2 and crossover_prob in [0, 1] (got {population}, '
                              f'{crossover_prob})')
        #: the front's second objective: predicted latency with a latency range, else MACs
        self.objective = 'latency' if latency_range is not None else 'macs'
        on_latency = self.objective == 'latency'
        window = tuple((latency_range if on_latency else macs_range) if pareto_range is None else pareto_range)
        super().__init__(space, resolution, num_classes, depths, macs_range if on_latency else window,
                         population=population, parents=population, mutation_prob=mutation_prob, crossover_num=0,
                         mutation_num=0, seed=seed, max_paths=max_paths, keep_widths=True,   # all widths drawn
                         latency_table=latency_table, latency_range=window if on_latency else None)
        self.macs_range = (float(macs_range[0]), float(macs_range[1]))
        #: the ranges the final pick meets, whatever window the candidates come from
        self.pick_budget = path_budget(self.sampler.codes, resolution, num_classes, depths, macs_range,
                                       latency_table, latency_range)
        self.crossover_prob = float(crossover_prob)
        self.config.update(algorithm='nsga2', pick_range=list(self.macs_range))
        if on_latency:
            self.config.update(objective='latency', pick_latency_range=list(self.pick_budget.get('latency').lo_hi))
        self.members = np.zeros(0, dtype=np.int64)        # rows of ``codes``: the current population

    def cost_of(self, codes: np.ndarray) -> np.ndarray:
        """The front's cost of codes: predicted ms (latency front) or MACs, as floats."""
        if self.objective == 'latency':
            return np.asarray(self.sampler.latency_table.predict_codes(codes), dtype=np.float64)
        return np.asarray(self.table.macs_of(codes), dtype=np.float64)

    def objectives(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(-score, cost) of evaluated rows, cost = MACs or predicted ms (:meth:`cost_of`): both minimised."""
        rows = np.arange(len(self.scores)) if rows is None else rows
        return np.stack([-self.scores[rows], self.cost_of(self.codes[rows])], axis=1) if len(rows) else np.zeros((0, 2))

    def step(self, evaluate: Evaluate) -> None:
        before = len(self.scores)
        self._evaluate(evaluate, self.candidates)
        pool = np.concatenate([self.members, np.arange(before, len(self.scores))])
        self.members = pool[survivors(self.objectives(pool), self.population)]
        obj = self.objectives(self.members)
        rank = non_dominated_sort(obj)
        front = self.members[rank == 0]
        self.history.append({'generation': self.generation, 'evaluated': int(len(self.scores)),
                             'front_size': int(len(front)), 'best': float(self.scores[front].max()),
                             **({'front_ms': [round(float(x), 4) for x in sorted(obj[rank == 0, 1])]}
                                if self.objective == 'latency' else
                                {'front_macs': [int(x) for x in sorted(obj[rank == 0, 1])]})})
        self.generation += 1
        self.candidates = self._offspring()

    def _offspring(self) -> np.ndarray:
        obj = self.objectives(self.members)
        rank = non_dominated_sort(obj)
        crowd = np.zeros(len(rank))
        for r in np.unique(rank):
            crowd[rank == r] = crowding_distance(obj[rank == r])
        parents = self.codes[self.members]

        def tournament(n: int) -> np.ndarray:
            a, b = self.rng.integers(len(parents), size=(2, n))
            a_wins = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowd[a] >= crowd[b]))
            return np.where(a_wins, a, b)

        def draw(n: int) -> np.ndarray:
            pa, pb = parents[tournament(n)], parents[tournament(n)]
            cross = self.rng.random(n) < self.crossover_prob
            mix = self.rng.random(pa.shape) < 0.5
            kids = np.where(cross[:, None] & mix, pb, pa)        # same depths: layers line up
            redraw = (self.rng.random(kids.shape) < self.mutation_prob) & (kids != self.sampler.absent)
            kids[redraw] = self.sampler.random_layers(int(redraw.sum()))
            return kids
        kids = self._fill(np.zeros((0, parents.shape[1]), self.dtype), self.population, draw)
        return self._fill(kids, self.population)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), 'members': self.members.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.members = np.asarray(state['members'], dtype=np.int64)

    def result(self) -> ParetoResult:
        if not len(self.scores):
            raise ConfigError('nsga2: no path was evaluated (generations must be >= 1)')
        obj = self.objectives()
        front = np.flatnonzero(non_dominated_sort(obj) == 0)
        front = front[np.lexsort((-self.scores[front], obj[front, 1]))]
        macs = np.asarray(self.table.macs_of(self.codes), dtype=np.int64).reshape(-1)
        lat = self.sampler.latency_table
        latency = None if lat is None or self.sampler.codes.multipath else \
            np.asarray(lat.predict_codes(self.codes), dtype=np.float64).reshape(-1)
        inside = np.asarray(self.pick_budget.inside(self.codes), dtype=bool).reshape(-1)
        pick = None
        f_in = np.flatnonzero(inside[front])
        if len(f_in):
            pick = int(f_in[np.argmax(self.scores[front][f_in])])
        best_in = None
        if inside.any():
            rows = np.flatnonzero(inside)
            best_in = int(rows[np.argmax(self.scores[rows])])
        return ParetoResult(self.codes[front].copy(), self.scores[front].copy(), macs[front].copy(), pick,
                            self.codes.copy(), self.scores.copy(), macs, best_in, list(self.history),
                            self.state_dict(), self.sampler.codes.multipath, self.objective, latency,
                            None if latency is None else latency[front].copy())


def nsga2_search(evaluate: Evaluate, space: SearchSpace, resolution: int, num_classes: int, depths: Sequence[int],
                 macs_range: tuple[float, float], population: int = 50, generations: int = 20,
                 mutation_prob: float = 0.1, crossover_prob: float = 0.9, seed: int = 0,
                 on_generation: Callable[[int, dict[str, Any]], None] | None = None,
                 init_state: dict[str, Any] | None = None, max_paths: int | None = None,
                 pareto_range: tuple[float, float] | None = None, latency_table: Any = None,
                 latency_range: tuple[float, float] | None = None) -> ParetoResult:
    """NSGA-II over (``evaluate`` score, MACs or, with ``latency_range``, predicted ms) of a supernet's
    paths; the front and the pick inside ``macs_range`` (and ``latency_range``).

    ``evaluate`` maps an ``(N, slots)`` array of encoded paths to N scores (higher is better).
    ``on_generation(gen, state)`` runs after each generation; ``init_state`` (such a state) resumes.
    """
    search = NSGA2Search(space, resolution, num_classes, depths, macs_range, population=population,
                         mutation_prob=mutation_prob, crossover_prob=crossover_prob, seed=seed, max_paths=max_paths,
                         pareto_range=pareto_range, latency_table=latency_table, latency_range=latency_range)
    run_generations(search, evaluate, generations, on_generation, init_state)
    return search.result()


def write_pareto(res: ParetoResult, decode: Callable[[np.ndarray], Arch], macs_range: tuple[float, float],
                 work_dir: 'str | Path', score_label: str = 'top-1 (%)',
                 latency_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """``pareto.json`` (the front, every evaluated path, the pick) and ``pareto.png``, atomically.

    Each path carries its MACs, and its predicted ``latency_ms`` where the search had a latency table.
    """
    work = Path(work_dir)
    chosen = res.best_code

    def costs(macs: Any, latency: Any) -> dict[str, Any]:
        return {'macs': int(macs), **({} if latency is None else {'latency_ms': round(float(latency), 4)})}

    def lat(values: np.ndarray | None, i: int | None) -> float | None:
        return None if values is None or i is None else values[i]

    front = [{'arch': decode(c).to_dict(), 'score': float(s), **costs(m, lat(res.front_latency, i))}
             for i, (c, s, m) in enumerate(zip(res.front_codes, res.front_scores, res.front_macs))]
    on_front = res.pick is not None
    pick_costs = costs(res.front_macs[res.pick], lat(res.front_latency, res.pick)) if on_front else \
        costs(res.macs[res.best_in_range], lat(res.latency, res.best_in_range))
    cost_label = 'minimise predicted latency (ms)' if res.objective == 'latency' else 'minimise MACs'
    data = {'objectives': [f'maximise {score_label}', cost_label], 'macs_range': [float(x) for x in macs_range],
            **({} if latency_range is None else {'latency_range': [float(x) for x in latency_range]}),
            'front': front,
            'pick': {'arch': decode(chosen).to_dict(), 'on_front': on_front,
                     'score': float(res.front_scores[res.pick] if on_front else res.scores[res.best_in_range]),
                     **pick_costs},
            'evaluated': [{'code': [int(x) for x in c], 'score': float(s), **costs(m, lat(res.latency, i))}
                          for i, (c, s, m) in enumerate(zip(res.codes, res.scores, res.macs))],
            'history': res.history}
    atomic_write_text(work / PARETO_FILE, json.dumps(data, indent=1) + '\n')
    plot_pareto(res, latency_range if res.objective == 'latency' else macs_range, work / PLOT_FILE, score_label)
    return data


def plot_pareto(res: ParetoResult, cost_range: tuple[float, float], path: Path,
                score_label: str = 'top-1 (%)') -> Path:
    """Every evaluated path (grey), the front (red, joined), the pick (star) and the range of the front's
    cost (MACs, or predicted ms for a latency front)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    on_latency = res.objective == 'latency'
    scale, name = (1.0, 'predicted latency (ms)') if on_latency else (1e6, 'MACs (M)')
    cost, front_cost = res.cost() / scale, res.cost(front=True) / scale
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.scatter(cost, res.scores, s=8, alpha=0.4, color='tab:gray', label=f'evaluated ({len(res.scores)})')
    ax.step(front_cost, res.front_scores, where='post', color='tab:red', lw=1, zorder=2)
    ax.scatter(front_cost, res.front_scores, s=30, color='tab:red', edgecolor='k', zorder=3,
               label=f'Pareto front ({len(res.front_scores)})')
    if res.pick is not None or res.best_in_range is not None:
        m = front_cost[res.pick] if res.pick is not None else cost[res.best_in_range]
        s = res.front_scores[res.pick] if res.pick is not None else res.scores[res.best_in_range]
        ax.scatter([m], [s], marker='*', s=220, color='gold', edgecolor='k', zorder=4, label='pick')
    ax.axvspan(cost_range[0] / scale, cost_range[1] / scale, color='tab:blue', alpha=0.08,
               label='latency range' if on_latency else 'MACs range')
    ax.set_xlabel(name)
    ax.set_ylabel(score_label)
    ax.set_title(f'NSGA-II: inherited top-1 vs {"predicted latency" if on_latency else "MACs"}')
    ax.legend(loc='lower right', fontsize=8)
    fig.tight_layout()
    atomic_write_bytes(path, png_bytes(fig))
    return path


__all__ = ['NSGA2Search', 'ParetoResult', 'crowding_distance', 'dominates', 'non_dominated_sort', 'nsga2_search',
           'plot_pareto', 'survivors', 'write_pareto']
