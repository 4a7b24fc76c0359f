"""Evolutionary search under a MACs budget, and Kendall's tau."""
import io
import itertools

import numpy as np
import pytest
import torch

from cream_det.errors import SpaceError
from cream_det.search.evolution import evolution_search
from cream_det.search.ranking import expected_tau, kendall_tau, seed_noise, split_half_taus
from cream_det.space import CREAM_SPACE, cost_table

RES, NCLS, DEPTHS = 224, 1000, (2, 1, 1, 1, 1)      # 6^6 = 46,656 paths: small enough to brute-force
TABLE = cost_table(CREAM_SPACE, RES, NCLS)


def _all_codes():
    codes = np.full((6 ** 6, CREAM_SPACE.max_layers), -1, dtype=np.int8)
    ops = np.array(list(itertools.product(range(6), repeat=6)), dtype=np.int8)
    slots = [0, 1, 6, 12, 18, 24]                   # the present layers of DEPTHS
    codes[:, slots] = ops
    return codes


def _budget():
    lo, hi = TABLE.bounds(DEPTHS)
    return (lo + (hi - lo) * 0.3, lo + (hi - lo) * 0.6)


def score(codes):
    """Synthetic: bigger op indices are better (and mostly costlier), so the budget binds."""
    return np.where(codes >= 0, codes, 0).sum(axis=1).astype(float)


class Recorder:
    def __init__(self):
        self.batches = []

    def __call__(self, codes):
        self.batches.append(codes.copy())
        return score(codes)


def test_finds_the_optimum_inside_the_budget_and_never_leaves_it():
    lo, hi = _budget()
    every = _all_codes()
    macs = TABLE.macs_of(every)
    optimum = score(every[(macs >= lo) & (macs <= hi)]).max()
    rec = Recorder()
    res = evolution_search(rec, CREAM_SPACE, RES, NCLS, DEPTHS, (lo, hi), population=30, generations=12,
                           parents=8, crossover_num=15, mutation_num=15, seed=0)
    assert res.best_score == optimum and lo <= res.best_macs <= hi
    proposed = np.concatenate(rec.batches)
    m = TABLE.macs_of(proposed)
    assert ((m >= lo) & (m <= hi)).all()
    assert len({c.tobytes() for c in proposed}) == len(proposed) == res.num_evaluated      # never twice
    assert len(rec.batches) == 12 and all(len(b) > 1 for b in rec.batches)                 # batched calls
    assert [h['best'] for h in res.history] == sorted(h['best'] for h in res.history)      # best-ever
    assert res.best_arch(CREAM_SPACE, RES, NCLS).depths == DEPTHS


def test_resume_continues_exactly():
    budget, kw = _budget(), dict(population=20, parents=5, crossover_num=10, mutation_num=10, seed=3)
    full = evolution_search(score, CREAM_SPACE, RES, NCLS, DEPTHS, budget, generations=6, **kw)
    states = {}
    evolution_search(score, CREAM_SPACE, RES, NCLS, DEPTHS, budget, generations=3,
                     on_generation=lambda g, s: states.__setitem__(g, s), **kw)
    assert sorted(states) == [0, 1, 2]
    buf = io.BytesIO()
    torch.save(states[2], buf)                      # the state survives a weights_only checkpoint
    buf.seek(0)
    resumed = evolution_search(score, CREAM_SPACE, RES, NCLS, DEPTHS, budget, generations=6,
                               init_state=torch.load(buf, weights_only=True), **kw)
    assert resumed.history == full.history and resumed.num_evaluated == full.num_evaluated
    np.testing.assert_array_equal(resumed.top_codes, full.top_codes)


def test_infeasible_budget_is_refused():
    lo, hi = TABLE.bounds(DEPTHS)
    with pytest.raises(SpaceError, match='infeasible'):
        evolution_search(score, CREAM_SPACE, RES, NCLS, DEPTHS, (hi + 1, hi + 2))


# ---- Kendall's tau -------------------------------------------------------------------------------
def test_kendall_tau_hand_computed():
    assert kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)        # (2 - 1) / 3 pairs
    # tau-b with a tie in x: 5 untied x-pairs, 6 y-pairs, concordant 5 -> 5 / sqrt(30)
    assert kendall_tau([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / np.sqrt(30))
    assert np.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1, 2, 3])


def test_kendall_tau_matches_scipy():
    stats = pytest.importorskip('scipy.stats')
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 6, 40), rng.normal(size=40).round(1)
        assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)


def test_seed_noise_hand_computed():
    # two archs x two seeds: per-arch variances 0.5 and 2 -> noise^2 1.25; means 1.5 and 5 (variance 6.125)
    # less 1.25 / 2 -> spread^2 5.5; expected tau 2/pi * asin(5.5 / 6.75)
    r = seed_noise([[1, 4], [2, 6]])
    assert r['noise'] == pytest.approx(np.sqrt(1.25))
    assert r['spread'] == pytest.approx(np.sqrt(5.5))
    assert r['expected_tau'] == pytest.approx(2 / np.pi * np.arcsin(5.5 / 6.75))
    # two ground truths of two seeds each: the noise of a mean, 1.25 / 2
    assert r['expected_tau_of_means'] == pytest.approx(2 / np.pi * np.arcsin(5.5 / 6.125))
    assert seed_noise([[1, 2, 3], [1, 2, 3]]) == pytest.approx(
        {'noise': 0.0, 'spread': 1.0, 'expected_tau': 1.0, 'expected_tau_of_means': 1.0})
    # the archs' means differ by no more than their noise explains: no spread, nothing to rank
    assert seed_noise([[0, 1], [1, 0]])['spread'] == 0.0 and seed_noise([[0, 1], [1, 0]])['expected_tau'] == 0.0
    for bad in ([[1, 2, 3]], [[1], [2]], [1, 2, 3]):
        with pytest.raises(ValueError):
            seed_noise(bad)


@pytest.mark.parametrize('spread,noise,seeds', [(1.0, 0.5, 2), (0.5, 1.0, 2), (0.7, 0.9, 4)])
def test_seed_noise_recovers_a_known_ground_truth(spread, noise, seeds):
    """Archs of known quality, runs with known noise: the estimates and the tau two seeds really agree with.
    The plausible wrong spread, the std of the observed means, overstates it by sqrt(1 + noise^2 / seeds /
    spread^2) (1.22 and 1.50 for the last two cases), far outside these tolerances."""
    rng = np.random.default_rng(0)
    quality = rng.normal(0.0, spread, 3000)
    runs = quality + rng.normal(0.0, noise, (seeds, quality.size))
    r = seed_noise(runs)
    assert r['noise'] == pytest.approx(noise, rel=0.03)
    assert r['spread'] == pytest.approx(spread, rel=0.06)
    taus = [kendall_tau(runs[0, i:i + 300], runs[1, i:i + 300]) for i in range(0, quality.size, 300)]
    assert r['expected_tau'] == pytest.approx(np.mean(taus), abs=0.03)
    if seeds == 4:
        # two ground truths of two seeds each (the halves' means) agree as expected_tau of two runs says, and
        # better than single seeds (the plausible wrong one, the single seeds' tau, is 0.09 lower here)
        splits = [split_half_taus(runs[:, i:i + 300]) for i in range(0, quality.size, 300)]
        halves = [t for split in splits for _, _, t in split]
        assert np.mean(halves) == pytest.approx(expected_tau(noise, spread, 2), abs=0.03)
        assert expected_tau(noise, spread, 2) - r['expected_tau'] > 0.08


def test_split_half_taus_are_the_taus_of_the_halves_means():
    acc = np.array([[1.0, 2, 3, 4], [2, 2, 5, 3], [1, 3, 2, 4], [2, 1, 4, 3]])
    got = split_half_taus(acc)
    assert [(a, b) for a, b, _ in got] == [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    for a, b, t in got:
        assert t == pytest.approx(kendall_tau(acc[list(a)].mean(0), acc[list(b)].mean(0)))
    # seeds 0+1: means 1.5 / 2 / 4 / 3.5, seeds 2+3: 1.5 / 2 / 3 / 3.5: five pairs concordant, one not
    assert got[0][2] == pytest.approx(4 / 6)
    assert len(split_half_taus(np.zeros((6, 3)))) == 10            # 6 seeds: C(5, 2) splits holding seed 0
    for bad in (np.zeros((2, 4)), np.zeros((5, 4)), np.zeros(4)):
        with pytest.raises(ValueError):
            split_half_taus(bad)
    with pytest.raises(ValueError):
        expected_tau(0.5, 0.5, 0)
    assert expected_tau(0.5, 0.5, 1) == pytest.approx(1 / 3)       # rho 1/2: 2/pi * asin(1/2)


def test_multipath_evolution_finds_the_optimum_of_a_brute_forced_space():
    """MixPath codes (op-set masks, 1..2 ops per layer): same guarantees as the single-path search."""
    from cream_det.space import Op, SearchSpace, StageSpec
    tiny = SearchSpace('tiny_evo_mp', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 2, Op(3, 2), 2)),
                       (Op(3, 2), Op(5, 2), Op(3, 4)), stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
                       last_channels=16, head_channels=16)
    table = cost_table(tiny, 32, 10).masks(2)
    masks = [1, 2, 4, 3, 5, 6]                                      # every set of 1 or 2 of the 3 ops
    every = np.array([[a, b, c, d] for a in masks for b in masks for c in masks for d in masks], dtype=np.int32)
    lo, hi = table.bounds((2, 2))
    lo, hi = lo + (hi - lo) * 0.3, lo + (hi - lo) * 0.7
    macs = table.macs_of(every)

    def mp_score(codes):            # more ops, and op 2 (k3e4), score higher
        bits = (codes[..., None] >> np.arange(3)) & 1
        return (bits * np.array([1.0, 1.5, 2.2])).sum(axis=(1, 2))
    optimum = mp_score(every[(macs >= lo) & (macs <= hi)]).max()
    batches = []

    def evaluate(codes):
        batches.append(codes.copy())
        return mp_score(codes)
    res = evolution_search(evaluate, tiny, 32, 10, (2, 2), (lo, hi), population=20, generations=10, parents=6,
                           crossover_num=8, mutation_num=8, mutation_prob=0.3, seed=0, max_paths=2)
    assert res.best_score == optimum and lo <= res.best_macs <= hi and res.multipath
    proposed = np.concatenate(batches)
    assert proposed.dtype == np.int32 and set(np.unique(proposed)) <= set(masks)
    m = table.macs_of(proposed)
    assert ((m >= lo) & (m <= hi)).all()
    assert len({c.tobytes() for c in proposed}) == len(proposed) == res.num_evaluated
    arch = res.best_arch(tiny, 32, 10)
    assert arch.is_multipath and arch.depths == (2, 2) and arch.macs == res.best_macs
    # resumable like the single-path search, and a single-path state is refused
    again = evolution_search(evaluate, tiny, 32, 10, (2, 2), (lo, hi), population=20, generations=12, parents=6,
                             crossover_num=8, mutation_num=8, mutation_prob=0.3, seed=0, max_paths=2,
                             init_state=res.state)
    assert again.num_evaluated > res.num_evaluated and again.best_score == optimum
    from cream_det.errors import ConfigError
    with pytest.raises(ConfigError, match='cannot resume'):
        evolution_search(evaluate, tiny, 32, 10, (2, 2), (lo, hi), generations=12, init_state=res.state)
