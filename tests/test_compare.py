"""tools/compare_strategies.py: several finished searches scored on the same archs, one Kendall tau each."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cream_det  # noqa: F401
from cream_det.engine import load_config
from cream_det.engine.compare import compare_searches, load_search, path_scores, write_comparison
from cream_det.engine.search_run import run_search
from cream_det.errors import CheckpointError, ConfigError
from cream_det.search.evaluate import path_scorer
from cream_det.search.ranking import kendall_tau
from cream_det.space import Arch

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / 'tests/scripts/search_toy_cfg.py'
OTHERS = {'spos': {'model.strategy': {'_delete_': True, 'type': 'spos'}, 'final_pick': 'evolution'},
          'mixpath': {'model.strategy': {'_delete_': True, 'type': 'mixpath', 'max_paths': 2},
                      'final_pick': 'evolution'}}


@pytest.fixture(scope='module')
def searches(tmp_path_factory):
    root = tmp_path_factory.mktemp('searches')
    run_search(load_config(TOY, {}, str(root / 'cream')))
    for name, opts in OTHERS.items():
        run_search(load_config(TOY, opts, str(root / name)))
    return root


def _same(a: float, b: float) -> bool:
    """Equal, NaN (a constant ranking) equal to NaN."""
    return a == pytest.approx(b) if b == b else a != a


@pytest.mark.slow
def test_every_search_scores_the_same_archs(searches, tmp_path, one_thread, monkeypatch):
    import cream_det.engine.compare as engine_compare
    trained = []                 # every stand-alone training the comparison makes: (archs, seed, top-1)
    real = engine_compare.standalone_top1

    def recorded(archs, *a, seed=0, **kw):
        top1 = real(archs, *a, seed=seed, **kw)
        trained.append((list(archs), seed, top1.tolist()))
        return top1

    monkeypatch.setattr(engine_compare, 'standalone_top1', recorded)
    runs = [load_search(searches / n) for n in ('cream', 'spos', 'mixpath')]
    assert [r.strategy for r in runs] == ['Cream', 'SPOS', 'MixPath']
    res = compare_searches(runs, num_archs=4, epochs=1, calib_batches=2)
    archs = [Arch.from_dict(a) for a in res['archs']]
    assert len(archs) == 4 and not any(a.is_multipath for a in archs)
    lo, hi = res['macs_range']
    assert all(lo <= a.macs <= hi for a in archs)
    assert len(res['standalone_top1']) == 4
    # the seed noise: the first arch retrained with another seed, against its first training
    (first, seed0, top1), (again, seed1, top1_again) = trained[:2]
    assert again == first[:1] and seed1 != seed0 and top1 == res['standalone_top1']
    assert res['standalone_seed_noise'] == pytest.approx(abs(top1_again[0] - top1[0]))
    for r in res['runs']:
        assert len(r['scores']) == 4
        assert _same(r['kendall_tau'], kendall_tau(r['scores'], res['standalone_top1']))     # NaN: a constant ranking
    # MixPath is also scored on the multi-path archs it was trained for (only it can run them)
    mp = res['multipath']
    marchs = [Arch.from_dict(a) for a in mp['archs']]
    assert mp['max_paths'] == 2 and len(marchs) == 4 and any(a.is_multipath for a in marchs)
    assert len(mp['standalone_top1']) == 4
    assert [('multipath' in r) for r in res['runs']] == [False, False, True]
    assert len(res['runs'][2]['multipath']['scores']) == 4
    assert trained[2][0] == marchs and mp['standalone_top1'] == trained[2][2]
    assert _same(res['runs'][2]['multipath']['kendall_tau'],
                 kendall_tau(res['runs'][2]['multipath']['scores'], mp['standalone_top1']))
    table = write_comparison(res, tmp_path)
    assert table.count('\n| ') == 3 and '| MixPath | inherited top-1 |' in table
    assert 'Multi-path archs (MixPath only)' in table and table.count(' – |') == 2
    assert json.loads((tmp_path / 'comparison.json').read_text())['runs'] == res['runs']
    assert (tmp_path / 'comparison.png').read_bytes()[:4] == b'\x89PNG'


def test_scores_are_the_supernets_inherited_accuracy(searches, one_thread):
    run = load_search(searches / 'cream')
    import torch
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 5, (8,), generator=g)) for _ in range(2)]
    sn = run.model.supernet
    archs = [Arch.load(searches / n / 'arch.json') for n in ('cream', 'spos')]
    got = path_scores(run, archs, batches[:1], batches)
    assert got.tolist() == path_scorer(sn, batches[:1], batches)(archs).tolist()


def test_searches_that_do_not_compare_are_refused(searches, tmp_path):
    other = tmp_path / 'deeper'
    run_search(load_config(TOY, {'model.depths': (3, 2), 'train_cfg.max_epochs': 1}, str(other)))
    with pytest.raises(ConfigError, match='compare searches of the same supernet'):
        compare_searches([load_search(searches / 'cream'), load_search(other)], num_archs=2, epochs=1)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(CheckpointError, match='no last_checkpoint'):
        load_search(tmp_path / 'empty')
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, str(ROOT / 'tools/compare_strategies.py'), str(tmp_path / 'nowhere'),
                        '--out-dir', str(tmp_path / 'o')], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 2 and 'no such search work dir' in r.stderr and 'Traceback' not in r.stderr
