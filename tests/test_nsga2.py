"""NSGA-II (MixPath's final search): sorting, crowding, the front on a synthetic objective, resume,
and the search tool killed with SIGKILL mid-search and resumed."""
import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import cream_det  # noqa: F401
from cream_det.search.nsga2 import (NSGA2Search, crowding_distance, dominates, non_dominated_sort, nsga2_search,
                                    survivors)
from cream_det.space import Arch, SearchSpace

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / 'tests/scripts/search_toy_cfg.py'

pytestmark = pytest.mark.usefixtures('one_thread')


def _brute_ranks(f):
    """Front index by the definition: peel off the points no remaining point dominates."""
    left, rank, r = set(range(len(f))), np.full(len(f), -1), 0
    while left:
        front = [i for i in left if not any(dominates(f[j], f[i]) for j in left if j != i)]
        rank[front] = r
        left -= set(front)
        r += 1
    return rank


@pytest.mark.parametrize('seed', range(10))
def test_non_dominated_sort_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 6, size=(int(rng.integers(1, 40)), 2)).astype(float)     # many ties and duplicates
    assert np.array_equal(non_dominated_sort(f), _brute_ranks(f))


def test_crowding_distance_by_hand_and_survivors_keep_whole_fronts():
    f = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(f)
    # inner points: (3 - 0)/4 + (4 - 1)/4 = 1.5 and (4 - 1)/4 + (2 - 0)/4 = 1.25; the ends are infinite
    assert np.isinf(d[0]) and np.isinf(d[3]) and d[1] == pytest.approx(1.5) and d[2] == pytest.approx(1.25)
    both = np.concatenate([f, f + 1.0])                 # the second front is dominated by the first
    keep = survivors(both, 6)
    assert set(keep[:4]) == {0, 1, 2, 3}                # front 0 whole
    assert set(keep[4:]) == {4, 7}                      # front 1 cut by crowding: its two ends


def _toy():
    from mmengine.config import Config
    return SearchSpace.from_dict(Config.fromfile(str(TOY)).tiny_space.to_dict())


def _synthetic(space, seed=0):
    """A separable score per (layer, op set), so the optimum is known; wider layers score more and cost more."""
    from cream_det.space import cost_table
    table = cost_table(space, 32, 5).masks(2)
    rng = np.random.default_rng(seed)
    w = rng.random(table.macs.shape) + table.width[None, :] * 0.6

    def evaluate(codes):
        codes = np.asarray(codes)
        return np.asarray([sum(w[i, c] for i, c in enumerate(row) if c > 0) for row in codes])
    return table, evaluate


def _all_codes(space):
    layer = [m for m in range(1, 8) if bin(m).count('1') <= 2]          # 3 single ops and 3 pairs
    rows = []
    for a, b, c, d in itertools.product(layer, repeat=4):
        rows.append([a, b, 0, c, d, 0])
    return np.asarray(rows, dtype=np.int32)


def test_nsga2_front_is_non_dominated_and_holds_the_known_optimum():
    space = _toy()
    table, evaluate = _synthetic(space)
    every = _all_codes(space)
    macs = table.macs_of(every)
    lo, hi = float(np.percentile(macs, 20)), float(np.percentile(macs, 90))
    res = nsga2_search(evaluate, space, 32, 5, (2, 2), (lo, hi), population=16, generations=15, seed=0, max_paths=2)
    f = np.stack([-res.scores, res.macs.astype(float)], 1)
    front = np.stack([-res.front_scores, res.front_macs.astype(float)], 1)
    for p in front:                                     # no evaluated path dominates a front member ...
        assert not any(dominates(q, p) for q in f)
    on_front = {tuple(c) for c in res.front_codes.tolist()}
    for c, p in zip(res.codes.tolist(), f):             # ... and every evaluated one off it is dominated
        if tuple(c) not in on_front:
            assert any(dominates(q, p) for q in front)
    inside = (macs >= lo) & (macs <= hi)
    assert len(res.scores) <= 240 < inside.sum() / 3      # it searched, not enumerated
    assert np.all((res.macs >= lo) & (res.macs <= hi))
    scores = evaluate(every)
    best = every[inside][np.argmax(scores[inside])]
    assert tuple(best) in on_front                      # the known optimum is found and on the front
    assert np.array_equal(res.best_code, best)          # and is the pick inside the range
    assert np.all(np.diff(res.front_macs) > 0) and np.all(np.diff(res.front_scores) > 0)


def test_nsga2_resumes_exactly_from_its_state():
    space = _toy()
    _, evaluate = _synthetic(space, seed=1)
    kw = dict(population=10, seed=3, max_paths=2)
    full = nsga2_search(evaluate, space, 32, 5, (2, 2), (0, 1e9), generations=5, **kw)
    states = []
    nsga2_search(evaluate, space, 32, 5, (2, 2), (0, 1e9), generations=2,
                 on_generation=lambda g, s: states.append(s), **kw)
    path = Path(os.environ.get('TMPDIR', '/tmp')) / f'nsga2_state_{os.getpid()}.pth'
    torch.save(states[-1], path)
    state = torch.load(path, weights_only=True)          # plain lists: loadable without pickles
    path.unlink()
    resumed = nsga2_search(evaluate, space, 32, 5, (2, 2), (0, 1e9), generations=5, init_state=state, **kw)
    assert np.array_equal(full.codes, resumed.codes) and np.array_equal(full.scores, resumed.scores)
    assert np.array_equal(full.front_codes, resumed.front_codes) and full.history == resumed.history
    with pytest.raises(Exception, match='cannot resume'):
        NSGA2Search(space, 32, 5, (2, 2), (0, 1e8), population=10, max_paths=2).load_state_dict(state)


def test_pareto_search_resumes_after_sigkill(tmp_path):
    """tools/search.py with MixPath + NSGA-II, killed with SIGKILL mid-search, resumed: same front, same arch."""
    from test_search import MIXPATH, _cli, _kill_and_resume
    opts = ['--cfg-options', *_cli({**MIXPATH, 'final_pick': 'pareto', 'train_cfg.max_epochs': 2,
                                    'pareto': dict(population=8, generations=8, calib_batches=2)})]

    def killed_between_generations(work):
        done = torch.load(work / 'pareto_state.pth', weights_only=True)['generation']
        assert 1 <= done < 8

    ref, killed = _kill_and_resume(TOY, tmp_path, opts, kill_at='pareto_state.pth',
                                   check_killed=killed_between_generations)
    a, b = (json.loads((w / 'pareto.json').read_text()) for w in (ref, killed))
    assert a == b
    assert len(a['history']) == 8 and a['front'] and a['pick']['arch']['stages']
    assert Arch.load(ref / 'arch.json') == Arch.load(killed / 'arch.json')
    assert Arch.load(ref / 'arch.json').is_multipath and (ref / 'pareto.png').stat().st_size > 1000
    summary = json.loads((ref / 'search_summary.json').read_text())
    assert summary['final_pick'] == 'pareto' and summary['pareto']['evaluated'] == len(a['evaluated'])
