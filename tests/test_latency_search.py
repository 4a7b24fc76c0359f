"""Searching under a latency range (engine-free): the one range check, the sampler, sizing, Cream's board,
evolution, NSGA-II's latency front, DNA's knapsack and the arch file's latency record.

The latency table here is synthetic and *anti*-correlated with MACs (the op with the most MACs of a
slot is its fastest), so an implementation that constrains or ranks by MACs where latency was asked
for picks visibly different paths and fails.
"""
import itertools
import json

import numpy as np
import pytest
import torch

from cream_det.errors import ArchError, SpaceError
from cream_det.models.latency import FIXED_PARTS, LatencyTable
from cream_det.search.board import PrioritizedBoard
from cream_det.search.combination import best_combination
from cream_det.search.dna import stage_latency
from cream_det.search.evolution import EvolutionSearch, evolution_search
from cream_det.search.nsga2 import non_dominated_sort, nsga2_search, write_pareto
from cream_det.space import Arch, ArchSampler, cost_table, get_space
from cream_det.space.budget import resolve_latency_range
from cream_det.space.sizing import supernet_depths

RES, NCLS = 32, 5
SPACE = get_space(dict(
    name='tiny_latency_search', ops=['k3e3', 'k5e3', 'k3e6'], stem_channels=8,
    first_block='ds_r1_k3_s1_e1_c8_se0.25', last_channels=64, head_channels=128,
    stages=[dict(out_channels=16, stride=2, template='k3e3', max_depth=3),
            dict(out_channels=24, stride=2, template='k3e3', max_depth=3)]))
MACS = cost_table(SPACE, RES, NCLS)


def anti_table(correction=None) -> LatencyTable:
    """ms per (slot, op) falling as the op's MACs rise: fewer MACs, slower."""
    m = MACS.macs[:, :len(SPACE.ops)].astype(np.float64)
    ms = np.zeros((SPACE.max_layers, len(SPACE.ops) + 1))
    ms[:, :-1] = 0.2 + (m.max(axis=1, keepdims=True) - m) / 1e5 + 0.01 * np.arange(SPACE.max_layers)[:, None]
    return LatencyTable(space=SPACE, resolution=RES, batch=1, num_classes=NCLS, threads=1, device='cpu',
                        device_name='synthetic', runtime='torch', versions={}, warmup=0, repeats=1,
                        fixed={k: 0.25 for k in FIXED_PARTS}, ms=ms,
                        input_shapes=tuple((1, 1, 1, 1) for _ in range(SPACE.max_layers)), correction=correction)


TABLE = anti_table()
DEPTHS = (2, 2)


def all_codes(depths=DEPTHS) -> np.ndarray:
    rows = []
    for ops in itertools.product(range(len(SPACE.ops)), repeat=sum(depths)):
        code, off, i = np.full(SPACE.max_layers, -1, np.int8), 0, 0
        for st, d in zip(SPACE.stages, depths):
            code[off:off + d] = ops[i:i + d]
            off, i = off + st.max_depth, i + d
        rows.append(code)
    return np.stack(rows)


EVERY = all_codes()
EVERY_MS = TABLE.predict_codes(EVERY)
EVERY_MACS = MACS.macs_of(EVERY)


def lower_third() -> tuple[float, float]:
    lo, hi = TABLE.bounds(DEPTHS)
    return lo, lo + (hi - lo) / 3


def test_the_table_really_is_anti_correlated():
    assert np.corrcoef(EVERY_MS, EVERY_MACS)[0, 1] < -0.9


# ---- the range check and the sampler -------------------------------------------------------------
def test_sampler_draws_only_inside_the_latency_range_and_misses_none():
    rng = lower_third()
    s = ArchSampler(SPACE, RES, NCLS, depths=DEPTHS, latency_table=TABLE, latency_range=rng, seed=0)
    codes = s.sample_codes(2000)
    ms = TABLE.predict_codes(codes)
    assert ((ms >= rng[0]) & (ms <= rng[1])).all()
    # every path of the range turns up (exact rejection sampling, not a cheaper subset)
    inside = {c.tobytes() for c, m in zip(EVERY, EVERY_MS) if rng[0] <= m <= rng[1]}
    assert {c.tobytes() for c in codes} == inside
    assert s.inside(EVERY).sum() == len(inside)


def test_both_ranges_at_once_mean_both():
    lat = lower_third()
    macs = (float(np.percentile(EVERY_MACS, 50)), float(EVERY_MACS.max()))
    s = ArchSampler(SPACE, RES, NCLS, depths=DEPTHS, macs_range=macs, latency_table=TABLE, latency_range=lat, seed=0)
    codes = s.sample_codes(300)
    assert ((MACS.macs_of(codes) >= macs[0]) & (TABLE.predict_codes(codes) <= lat[1])).all()


def test_an_unreachable_latency_range_names_the_reachable_span():
    lo, hi = TABLE.bounds(DEPTHS)
    with pytest.raises(SpaceError, match=rf'latency range \[.*\] is infeasible: archs of the latency table .* with '
                                         rf'depths \(2, 2\) have between {lo:.3f} and {hi:.3f} ms'):
        ArchSampler(SPACE, RES, NCLS, depths=DEPTHS, latency_table=TABLE, latency_range=(hi + 1, hi + 2))
    with pytest.raises(SpaceError, match='needs a latency table'):
        ArchSampler(SPACE, RES, NCLS, depths=DEPTHS, latency_range=(lo, hi))
    with pytest.raises(SpaceError, match='single-path archs only'):
        ArchSampler(SPACE, RES, NCLS, depths=DEPTHS, latency_table=TABLE, latency_range=(lo, hi), max_paths=2)
    # the MACs check is the same one, its message unchanged
    with pytest.raises(SpaceError, match=r'MACs range .* is infeasible: .* have between [\d.]+M and [\d.]+M MACs'):
        ArchSampler(SPACE, RES, NCLS, depths=DEPTHS, macs_range=(1e12, 2e12))


def test_percentages_of_the_reachable_span():
    assert resolve_latency_range(('0%', '50%'), (2.0, 6.0)) == (2.0, 4.0)
    assert resolve_latency_range((1, '100%'), (2.0, 6.0)) == (1.0, 6.0)
    assert resolve_latency_range(None, (2.0, 6.0)) is None
    with pytest.raises(SpaceError, match='percentage'):
        resolve_latency_range(('a%', 3), (2.0, 6.0))


def test_sizing_stops_growing_at_the_latency_maximum():
    free, _ = supernet_depths(SPACE, (0, 1e12), RES, NCLS, grow_order=(0, 1), caps=((3, 3),))
    assert free == (3, 3)
    cap = TABLE.bounds((2, 1))[1]                  # the slowest net of depths (2, 1) just fits
    depths, _ = supernet_depths(SPACE, (0, 1e12), RES, NCLS, grow_order=(0, 1), caps=((3, 3),),
                                latency_table=TABLE, latency_max=cap)
    assert depths == (2, 1) and TABLE.bounds(depths)[1] <= cap < TABLE.bounds((3, 1))[1]
    with pytest.raises(SpaceError, match='need at least'):
        supernet_depths(SPACE, (0, 1e12), RES, NCLS, grow_order=(0, 1), caps=((3, 3),), latency_table=TABLE,
                        latency_max=0.1)


# ---- Cream's board --------------------------------------------------------------------------------
def _offer(board, code, acc, macs, latency):
    return board.consider(tuple(EVERY[code]), acc, macs, torch.zeros(1, 3, 4, 4), torch.full((1, NCLS), 1 / NCLS),
                          0, latency)


def test_board_calls_a_path_cheaper_by_latency_when_asked():
    for cost, want in (('macs', [False, True]), ('latency', [True, False])):
        results = []
        for code, macs, ms in ((1, 900, 1.0), (2, 100, 9.0)):     # better, within the margin; one cheaper each way
            b = PrioritizedBoard(size=1, margin=5.0, cost=cost)
            assert _offer(b, 0, 50.0, 500, 5.0)
            results.append(_offer(b, code, 52.0, macs, ms))
        assert results == want, cost


def test_board_orders_ties_by_latency_and_keeps_it():
    b = PrioritizedBoard(size=3, cost='latency')
    for code, macs, ms in ((0, 100, 3.0), (1, 300, 1.0), (2, 200, 2.0)):
        _offer(b, code, 50.0, macs, ms)
    assert [e.code for e in b] == [tuple(EVERY[i]) for i in (1, 2, 0)]      # by MACs it would be 0, 2, 1
    state = b.state_dict()
    c = PrioritizedBoard(size=1)
    c.load_state_dict(state)
    assert c.cost == 'latency' and [e.latency for e in c] == [1.0, 2.0, 3.0]
    report = b.to_json(SPACE, RES, NCLS)
    assert report['cost'] == 'latency' and [e['latency_ms'] for e in report['entries']] == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match='predicted latency'):
        b.consider((7,), 90.0, 1, torch.zeros(1, 3, 4, 4), torch.zeros(1, NCLS), 0)


# ---- evolution and NSGA-II ------------------------------------------------------------------------
def _score(codes):
    """Higher for more MACs: under a latency range the best path is not the best under MACs alone."""
    return MACS.macs_of(np.asarray(codes)).astype(float) / 1e6


def test_evolution_keeps_every_candidate_inside_the_latency_range():
    rng = lower_third()
    res = evolution_search(_score, SPACE, RES, NCLS, DEPTHS, (0, 1e12), population=12, generations=4, parents=4,
                           crossover_num=4, mutation_num=4, latency_table=TABLE, latency_range=rng)
    codes = np.asarray(res.state['codes'], dtype=np.int8)
    ms = TABLE.predict_codes(codes)
    inside = (EVERY_MS >= rng[0]) & (EVERY_MS <= rng[1])
    assert len(codes) == min(12, int(inside.sum())) and ((ms >= rng[0]) & (ms <= rng[1])).all()
    assert res.best_latency == pytest.approx(float(TABLE.predict_codes(res.best_code)))
    assert res.state['config']['latency_range'] == list(rng)
    # the best path in range by the score: the evolution found it (the space is small)
    assert res.best_score == pytest.approx(_score(EVERY[inside]).max())


def test_resuming_an_evolution_under_another_latency_range_is_refused():
    a = EvolutionSearch(SPACE, RES, NCLS, DEPTHS, (0, 1e12), latency_table=TABLE, latency_range=lower_third())
    b = EvolutionSearch(SPACE, RES, NCLS, DEPTHS, (0, 1e12), latency_table=TABLE, latency_range=TABLE.bounds(DEPTHS))
    a.start()
    with pytest.raises(Exception, match='cannot resume'):
        b.load_state_dict(a.state_dict())


def test_nsga2_front_is_on_latency_and_the_pick_inside_both_ranges(tmp_path):
    lat = (float(np.percentile(EVERY_MS, 10)), float(np.percentile(EVERY_MS, 60)))
    res = nsga2_search(_score, SPACE, RES, NCLS, DEPTHS, (0, 1e12), population=24, generations=12, seed=0,
                       latency_table=TABLE, latency_range=lat)
    assert res.objective == 'latency'
    ms = TABLE.predict_codes(res.codes)
    assert np.allclose(res.latency, ms)
    # the front is exactly the non-dominated set of (score, latency) over every evaluated path ...
    rank = non_dominated_sort(np.stack([-res.scores, ms], 1))
    front = {c.tobytes() for c in res.codes[rank == 0]}
    assert {c.tobytes() for c in res.front_codes} == front
    assert list(res.front_latency) == sorted(res.front_latency)
    # ... and not the (score, MACs) one, which is a different set for this table
    by_macs = non_dominated_sort(np.stack([-res.scores, res.macs.astype(float)], 1))
    assert {c.tobytes() for c in res.codes[by_macs == 0]} != front
    pick_ms = float(TABLE.predict_codes(res.best_code))
    assert lat[0] <= pick_ms <= lat[1]
    # pareto.json and pareto.png say so
    data = write_pareto(res, lambda c: Arch.decode(c, SPACE, RES, NCLS), (0, 1e12), tmp_path, latency_range=lat)
    saved = json.loads((tmp_path / 'pareto.json').read_text())
    assert saved == json.loads(json.dumps(data)) and saved['objectives'][1] == 'minimise predicted latency (ms)'
    assert saved['latency_range'] == list(lat) and saved['pick']['latency_ms'] == pytest.approx(pick_ms, abs=1e-4)
    assert [f['latency_ms'] for f in saved['front']] == pytest.approx(list(res.front_latency), abs=1e-4)
    assert (tmp_path / 'pareto.png').read_bytes()[:4] == b'\x89PNG'


# ---- DNA's knapsack --------------------------------------------------------------------------------
def _brute(macs, lat, losses, mrange, lrange, fixed_m, fixed_l):
    best = None
    for choice in itertools.product(*[range(len(m)) for m in macs]):
        m = fixed_m + sum(x[c] for x, c in zip(macs, choice))
        t = fixed_l + sum(x[c] for x, c in zip(lat, choice))
        v = sum(x[c] for x, c in zip(losses, choice))
        if mrange[0] <= m <= mrange[1] and lrange[0] <= t <= lrange[1] and (best is None or v < best[0]):
            best = (v, choice)
    return best


@pytest.mark.parametrize('seed', range(40))
def test_knapsack_with_a_latency_limit_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5))
    sizes = [int(rng.integers(1, 7)) for _ in range(n)]
    macs = [rng.integers(0, 50, size=k) for k in sizes]
    lat = [60.0 - m + rng.random(k) * 10 for m, k in zip(macs, sizes)]     # slower where MACs are fewer
    losses = [rng.random(k) * 4 + m / 20 for m, k in zip(macs, sizes)]      # cheap (in MACs) distils best
    fm, fl = int(rng.integers(0, 20)), float(rng.random() * 5)
    tot_m = [fm + sum(int(x.min()) for x in macs), fm + sum(int(x.max()) for x in macs)]
    tot_l = [fl + sum(float(x.min()) for x in lat), fl + sum(float(x.max()) for x in lat)]
    mr = (0, tot_m[1]) if seed % 2 else tuple(sorted(rng.uniform(tot_m[0] - 5, tot_m[1] + 5, 2)))
    lr = tuple(sorted(rng.uniform(tot_l[0], tot_l[1], 2)))
    want = _brute(macs, lat, losses, mr, lr, fm, fl)
    if want is None:
        with pytest.raises(SpaceError, match='no combination'):
            best_combination(macs, losses, mr, fm, latency=(lat, lr, fl))
        return
    got = best_combination(macs, losses, mr, fm, latency=(lat, lr, fl))
    assert got.loss == pytest.approx(want[0])
    assert lr[0] <= got.latency <= lr[1] and mr[0] <= got.macs <= mr[1]
    assert got.latency == pytest.approx(fl + sum(x[c] for x, c in zip(lat, got.choice)))


def test_stage_cells_latency_adds_up_to_the_arch_prediction():
    cells = [(2,), (0, 1)]
    parts = [stage_latency(TABLE, SPACE, s, [c])[0] for s, c in enumerate(cells)]
    code = np.full(SPACE.max_layers, -1, np.int8)
    code[0], code[3:5] = 2, (0, 1)
    empty = float(TABLE.predict_codes(np.full(SPACE.max_layers, -1, np.int8)))
    assert empty + sum(parts) == pytest.approx(float(TABLE.predict_codes(code)))


# ---- the arch file ---------------------------------------------------------------------------------
def test_arch_file_records_predicted_latency_and_old_files_still_read(tmp_path):
    arch = Arch.decode(EVERY[5], SPACE, RES, NCLS)
    record = TABLE.arch_record(arch)
    assert record['predicted_ms'] == pytest.approx(float(EVERY_MS[5]), abs=1e-4)
    assert record['device'] == 'cpu' and record['resolution'] == RES
    path = arch.save(tmp_path / 'a.json', latency=record)
    assert Arch.load(path) == arch
    assert '"latency"' in path.read_text() and '"macs"' in path.read_text()
    old = arch.save(tmp_path / 'old.json')
    assert '"latency"' not in old.read_text() and Arch.load(old) == arch
    bad = arch.to_dict({'predicted_ms': 1.0})
    bad['latency'] = {'predicted_ms': 'fast'}
    with pytest.raises(ArchError, match='latency'):
        Arch.from_dict(bad)


def test_det_choice_selects_only_board_paths_inside_the_latency_range():
    from cream_det.det.board_choice import Candidate, select_candidates
    board = [Candidate(r + 1, Arch.decode(EVERY[r], SPACE, RES, NCLS), 60.0 - r, int(EVERY_MACS[r]), r, ms)
             for r, ms in enumerate((3.0, 1.0, 2.0))]
    selected, skipped = select_candidates(board, (0, 1e12), None, latency_range=(0.5, 2.5))
    assert [c.board_rank for c in selected] == [2, 3] and skipped[0]['board_rank'] == 1
    assert 'latency' in skipped[0]['reason'] and skipped[0]['latency_ms'] == 3.0
    assert len(select_candidates(board, (0, 1e12), None)[0]) == 3          # without a latency range: all


def test_cream_board_compares_latency_and_picks_only_inside_the_range():
    from cream_det.models.supernet import Supernet
    from cream_det.search.cream import Cream
    sn = Supernet(SPACE, DEPTHS, num_classes=NCLS, resolution=RES)
    rng = lower_third()
    st = Cream(sn, macs_range=(0, 1e12), seed=0, board_size=4, latency_table=TABLE, latency_range=rng)
    assert st.board.cost == 'latency' and Cream(sn, macs_range=(0, 1e12), seed=0).board.cost == 'macs'
    inside = np.flatnonzero((EVERY_MS >= rng[0]) & (EVERY_MS <= rng[1]))
    outside = np.flatnonzero(EVERY_MS > rng[1])
    rows = [outside[0], inside[0], outside[1], inside[1]]            # best first by accuracy
    for acc, r in zip((90.0, 80.0, 70.0, 60.0), rows):
        assert _offer(st.board, r, acc, int(EVERY_MACS[r]), float(EVERY_MS[r]))
    assert st.ranked_candidates() == [tuple(EVERY[r]) for r in (inside[0], inside[1])]
    assert st.latency_of(EVERY[rows[0]]) == pytest.approx(float(EVERY_MS[rows[0]]))


def test_board_png_of_a_latency_search_plots_the_board_against_its_predicted_ms(monkeypatch, tmp_path):
    """A board ranked by latency is drawn against what it ranked by: a second panel in ms with the range."""
    import types

    import torch

    import cream_det.engine.supernet_search as ss
    from cream_det.search.board import PrioritizedBoard
    board = PrioritizedBoard(size=3, cost='latency')
    for i, (acc, ms) in enumerate([(50.0, 3.1), (60.0, 3.3), (55.0, 2.9)]):
        board.consider((i, 0), acc, 9_000_000 + i, torch.zeros(1, 3), torch.zeros(1, 2), step=i, latency=ms)
    figures = []
    monkeypatch.setattr(ss, 'png_bytes', lambda fig: figures.append(fig) or b'png')
    for latency_range in ((2.8, 3.4), None):
        model = types.SimpleNamespace(
            strategy=types.SimpleNamespace(board=board, history=[(0, 9_000_000, 50.0)]),
            macs_range=(8e6, 10e6), latency_range=latency_range,
            latency_table=types.SimpleNamespace(device='cpu', threads=1))
        ss.plot_board(model, tmp_path / 'board.png')
    timed, plain = figures
    assert len(plain.axes) == 1 and plain.axes[0].get_xlabel() == 'MACs (M)'
    assert len(timed.axes) == 2 and 'latency' in timed.axes[1].get_xlabel()
    xs = sorted(float(x) for x in timed.axes[1].collections[0].get_offsets()[:, 0])
    assert xs == pytest.approx([2.9, 3.1, 3.3])                     # the entries' predicted ms, not MACs


def test_a_latency_margin_holds_paths_inside_the_range_less_the_margin():
    from cream_det.space.budget import latency_guard
    assert latency_guard((2.0, 3.0), 0.1) == pytest.approx((2.2, 2.7))
    assert latency_guard((0.0, 3.0), 0.08) == pytest.approx((0.0, 2.76))
    assert latency_guard((2.0, 3.0), 0.0) == (2.0, 3.0)
    with pytest.raises(SpaceError, match='too narrow'):
        latency_guard((2.0, 2.2), 0.08)                       # 2.16 > 2.024: nothing left to search
    for bad in (-0.1, 0.5, 1.0):
        with pytest.raises(SpaceError, match='latency_margin'):
            latency_guard((2.0, 3.0), bad)


def test_a_latency_margin_without_a_latency_range_is_one_clear_error():
    from cream_det.engine.supernet_search import SupernetSearch
    from cream_det.errors import ConfigError
    with pytest.raises(ConfigError, match='latency_margin'):
        SupernetSearch(strategy=dict(type='spos'), macs_range=(0, 600e6), resolution=64, num_classes=10,
                       depths=(1, 1, 1, 1, 1), latency_margin=0.05)
