"""The cluttered-shapes proxy task (generated, ImageNet layout) and the ground-truth harness."""
import argparse
import importlib
import os
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cream_det.data.shapes import CLASSES, make_imagenet_shapes, render
from cream_det.data.imagenet import CreamImageFolder
from cream_det.errors import ConfigError
from image_sets import jpeg_digest

ROOT = Path(__file__).resolve().parents[1]


def test_layout_balance_and_determinism(tmp_path):
    a = make_imagenet_shapes(tmp_path / 'a', size=32, num_train=40, num_val=20, seed=3)
    b = make_imagenet_shapes(tmp_path / 'b', size=32, num_train=40, num_val=20, seed=3)
    c = make_imagenet_shapes(tmp_path / 'c', size=32, num_train=40, num_val=20, seed=4)
    assert jpeg_digest(a) == jpeg_digest(b) != jpeg_digest(c)
    for split, n in (('train', 4), ('val', 2)):
        folders = sorted(p for p in (a / split).iterdir())
        assert len(folders) == len(CLASSES) and all(len(list(f.glob('*.JPEG'))) == n for f in folders)
    ds = CreamImageFolder(str(a), split='val', input_size=32, is_training=False, crop_pct=1.0)
    item = ds[0]
    assert tuple(item['inputs'].shape) == (3, 32, 32) and len(ds) == 20
    assert (a / 'labels.txt').read_text().splitlines()[1].endswith(' ring')


def test_classes_differ_in_outline_and_interior():
    """A disc and a ring (a square and a hollow square) drawn at the same place differ only inside."""
    rng = lambda: np.random.default_rng(0)      # noqa: E731  same position, size, colours and noise
    disc, ring = render(0, 32, rng(), distractors=0, noise=0), render(1, 32, rng(), distractors=0, noise=0)
    inner = np.abs(disc - ring).sum(-1) > 30
    assert inner.any() and inner[[0, -1], :].sum() == 0 and inner[:, [0, -1]].sum() == 0


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match='size'):
        make_imagenet_shapes(tmp_path / 'x', size=8)
    with pytest.raises(ConfigError, match='num_train'):
        make_imagenet_shapes(tmp_path / 'x', num_train=3)


def _harness():
    """The harness of benchmarks/nas_proxy.py, the package beside it (the script puts the checkout on sys.path)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module('benchmarks.proxy_task')


def test_every_strategy_gets_the_same_supernet_data_and_budget(tmp_path):
    """The comparison is only fair when every strategy's config trains the same supernet on the same data
    for the same number of steps; the demo configs it starts from differ (DNA's depths). The MACs range is the
    same for every single-path strategy; MixPath's is its own (see the next test)."""
    np_ = _harness()
    p = dict(np_.QUICK)
    (lo, hi), _, paths = np_.arch_sets(p)
    _, specs = np_.search_specs(p, tmp_path, tmp_path / 'd', tmp_path / 'd', tmp_path / 'h', list(np_.STRATEGIES))
    base = dict(kind='search', params=p, data=str(tmp_path / 'd'), held_out=str(tmp_path / 'h'), macs_range=[lo, hi],
                paths=[a.to_dict() for a in paths], teacher=str(tmp_path / 't.pth'))
    cfgs = {s: np_.search_config(dict(base, strategy=s, seed=3, work_dir=str(tmp_path / s),
                                      macs_range=specs[f'{s}_s0']['macs_range'])) for s in np_.STRATEGIES}
    same = {(tuple(c.model.depths), c.model.resolution, c.model.num_classes, c.model.seed,
             c.train_cfg.max_epochs, c.train_dataloader.batch_size, c.train_dataloader.dataset.root,
             c.search_val_dataloader.dataset.root, c.train_dataloader.dataset.input_size, c.randomness['seed'],
             c.model.head_init) for c in cfgs.values()}
    assert same == {((1,) * 5, 32, 10, 3, 5, p['batch'], base['data'], base['held_out'], 32, 3, 'timm')}
    assert {tuple(c.model.macs_range) for s, c in cfgs.items() if s != 'mixpath'} == {(lo, hi)}
    zero = {np_.search_config(dict(base, params=dict(p, search_head='zero'), strategy=s, seed=3,
                                   work_dir=str(tmp_path / s))).model.head_init for s in np_.STRATEGIES}
    assert zero == {'zero'}
    assert [cfgs[s].model.strategy.teacher for s in ('cream_meta', 'cream_top1', 'cream_random')] == ['meta', 'top1', 'random']
    assert {cfgs[s].model.strategy.board_size for s in ('cream_meta', 'cream_top1', 'cream_random')} == {10}
    dna = cfgs['dna'].model.strategy
    assert dna.stage_epochs * 5 == cfgs['dna'].train_cfg.max_epochs and dna.teacher == {'checkpoint': base['teacher']}
    lrs = {s: c.optim_wrapper.optimizer.lr for s, c in cfgs.items() if s != 'dna'}
    assert set(lrs.values()) == {p['search_lr']}
    hooks = {s: [h['type'] for h in c.custom_hooks] for s, c in cfgs.items()}
    assert all('ProxyConvergenceHook' in h for h in hooks.values())
    teacher = np_.teacher_arch(p)
    assert all(op.name == 'k7e6' for st in teacher.stages for op in st) and teacher.depths == (1,) * 5


def test_mixpath_keeps_a_range_for_multi_path_archs(tmp_path):
    """MixPath's paths run 1..2 ops per layer and cost the sum of their branches (``Arch.macs``): its range keeps
    the single-path range's low end (the archs every supernet scores) and reaches the band's top of the multi-path
    MACs, as ``configs/search/mixpath_demo.py`` sizes its own (8-20M beside Cream's 8-10M). The single-path range
    (what the harness gave it before) holds only a sliver of the multi-path draws."""
    from cream_det.space import CREAM_SPACE, ArchSampler
    np_ = _harness()
    p = dict(np_.FULL, task='glyphs')
    (lo, hi), _, _ = np_.arch_sets(p)
    _, specs = np_.search_specs(p, tmp_path, tmp_path / 'd', tmp_path / 's', tmp_path / 'h', ['spos', 'mixpath'])
    mlo, mhi = specs['mixpath_s0']['macs_range']
    assert specs['spos_s0']['macs_range'] == [lo, hi] and mlo == lo and mhi > 1.5 * hi
    assert tuple(np_.search_config(dict(specs['mixpath_s0'], teacher='t')).model.macs_range) == (mlo, mhi)
    m = np_.demo_config('mixpath').model.strategy.max_paths
    draws = ArchSampler(CREAM_SPACE, 32, 34, depths=(1,) * 5, max_paths=m, seed=5)
    macs = np.array([draws.decode(c).macs for c in draws.sample_codes(300)])
    inside = lambda a, b: float(np.mean((macs >= a) & (macs <= b)))        # noqa: E731
    assert inside(mlo, mhi) > 0.95 and inside(lo, hi) < 0.5


def test_pool_runs_only_missing_jobs(tmp_path, monkeypatch):
    np_ = _harness()
    calls = []
    monkeypatch.setitem(np_.JOBS, 'count', lambda spec: calls.append(spec['i']) or {'top1': float(spec['i'])})
    pool = np_.Pool(tmp_path, jobs=1)
    first = pool.run({f'j{i}': {'kind': 'count', 'i': i} for i in range(3)})
    again = pool.run({f'j{i}': {'kind': 'count', 'i': i} for i in range(4)})
    # each result keeps its job's wall time (process_seconds), for a run's wall time rebuilt from its jobs
    assert all(r.pop('process_seconds') >= 0 for r in [*first.values(), again['j3']])
    assert calls == [0, 1, 2, 3] and first == {f'j{i}': {'top1': float(i)} for i in range(3)}
    assert again['j3'] == {'top1': 3.0}
    changed = pool.run({'j0': {'kind': 'count', 'i': 0, 'recipe': 'other'}})     # same name, other settings
    assert calls == [0, 1, 2, 3, 0] and set(changed['j0']) == {'top1', 'process_seconds'}
    # both settings' results are kept: going back to the first reruns nothing and gives its own result
    back = pool.run({'j0': {'kind': 'count', 'i': 0}})
    assert calls == [0, 1, 2, 3, 0] and back['j0']['top1'] == first['j0']['top1'] == 0.0
    assert pool.run({'j0': {'kind': 'count', 'i': 0, 'recipe': 'other'}}) == changed and len(calls) == 5


def test_committed_results_continue_a_run_from_a_fresh_clone_for_the_same_spec_only(tmp_path, monkeypatch, capsys):
    """``archive`` copies a run's results (not its spec files); a fresh --out with the archive reruns only the jobs
    whose spec is not archived, its own results win over the archive's, and without the archive it reruns all."""
    np_ = _harness()
    archive = tmp_path / 'committed'
    monkeypatch.setattr(np_.pool, 'ARCHIVE', archive)
    calls = []
    monkeypatch.setitem(np_.JOBS, 'count', lambda spec: calls.append(spec['i']) or {'top1': float(spec['i'])})
    specs = {f'j{i}': {'kind': 'count', 'i': i} for i in range(3)}
    np_.Pool(tmp_path / 'first', jobs=1).run(specs)
    (tmp_path / 'first' / 'jobs' / 'j0.spec.json').write_text('{}\n')       # a spec file is not a result
    np_.main(['archive', '--out', str(tmp_path / 'first')])
    assert sorted(p.name.split('.')[0] for p in archive.iterdir()) == ['j0', 'j1', 'j2']
    assert '3 job result(s)' in capsys.readouterr().out
    fresh = np_.Pool(tmp_path / 'fresh', jobs=1, archive=archive)
    changed = {**specs, 'j2': {'kind': 'count', 'i': 2, 'recipe': 'other'}, 'j3': {'kind': 'count', 'i': 3}}
    done = fresh.run(changed)
    assert calls == [0, 1, 2, 2, 3] and done['j0']['top1'] == 0.0
    assert '2 job(s) taken from the committed results' in capsys.readouterr().out
    (fresh.dir / 'j1.json').write_text(json.dumps({'spec_digest': np_.spec_digest(specs['j1']),
                                                   'result': {'top1': 42.0}}))
    assert fresh.run(specs)['j1'] == {'top1': 42.0} and calls == [0, 1, 2, 2, 3]       # j2: the archived result
    np_.Pool(tmp_path / 'bare', jobs=1).run(specs)
    assert calls[-3:] == [0, 1, 2]
    with pytest.raises(SystemExit, match='does not exist'):
        np_.main(['archive', '--out', str(tmp_path / 'nothing')])


def _glyphs_run():
    np_ = _harness()
    p = np_.settings(argparse.Namespace(**{**{k: None for k in np_.FULL}, 'task': 'glyphs'}, quick=False))
    out = Path('work_dirs/nas_proxy')
    data, search, held = np_.data_dirs(p, out, None)
    return np_, p, out, data, search, held


def test_the_committed_ground_truth_and_teacher_are_found_under_the_digests_the_harness_makes():
    """The committed results (benchmarks/results/nas_proxy/) are reused only under the digest of the spec that made
    each: the glyphs' ground truth (16 archs x 4 seeds) and DNA's teacher, as the harness builds their specs today,
    must find their results there, or a fresh clone retrains them (hours) before the comparison."""
    np_, p, out, data, search, held = _glyphs_run()
    teacher, _ = np_.search_specs(p, out, data, search, held, ['dna'])
    committed = {path.name for path in np_.pool.ARCHIVE.glob('*.json')}
    jobs = {'dna_teacher': teacher, **np_.groundtruth_specs(p, data)}
    missing = [n for n, spec in jobs.items() if f'{n}.{np_.spec_digest(spec)}.json' not in committed]
    assert not missing and len(jobs) == 1 + 16 * 4 == 1 + p['archs'] * p['gt_seeds']


def test_the_archived_glyphs_run_still_gives_the_taus_docs_evidence_reads():
    """The glyphs run docs/evidence.md reads was made before the search specs held their config's digest: its
    searches, scores and picks are kept in benchmarks/results/nas_proxy_v1/ (no run reuses them), its ground truth
    in the live archive. Read back, they give the table's taus (vs the mean of ground-truth seeds 0 and 1)."""
    from cream_det.search.ranking import kendall_tau
    np_ = _harness()
    v1 = np_.params.ARCHIVE_V1
    gt = np.array([[json.loads(next(np_.pool.ARCHIVE.glob(f'gt_a{i:02d}_s{s}.*.json')).read_text())['result']['top1']
                    for i in range(16)] for s in range(2)]).mean(0)
    documented = {'cream_meta': (0.13, 0.14), 'spos': (0.19, 0.13), 'dna': (0.51, 0.09), 'mixpath': (-0.23, 0.05)}
    for name, (mean, std) in documented.items():
        taus = []
        for seed in range(3):
            path = next(v1.glob(f'score_{name}_s{seed}.*.json'))
            stored = json.loads(path.read_text())
            assert path.name.split('.')[1] == stored['spec_digest']
            taus.append(kendall_tau(stored['result']['gt_scores'], gt))
        assert (round(float(np.mean(taus)), 2), round(float(np.std(taus, ddof=1)), 2)) == (mean, std), name
    assert len(list(v1.glob('*.json'))) == 3 * 3 * 6            # search, score and pick of 6 strategies x 3 seeds


ISSUE32_ARMS = ['cream_meta', 'cream_top1', 'cream_authors', 'cream_authors_top1', 'cream_late', 'spos', 'dna',
                'mixpath']


def _committed(np_, named: dict, tmp_path) -> dict:
    """Each job's committed result as the harness's pool finds it (archive only: no local work dir), or a failure
    naming the job a fresh clone would rerun."""
    pool = np_.pool.Pool(tmp_path, 1, np_.pool.ARCHIVE)
    done = {}
    for name, spec in named.items():
        done[name] = pool.stored(name, spec)
        assert done[name] is not None, f'{name}: no committed result under the digest the harness makes today'
    return done


def test_the_committed_issue32_run_is_found_and_gives_the_figures_docs_evidence_reads(tmp_path):
    """docs/evidence.md reads the glyphs run of issue 32 (eight arms, --no-picks): every search and score job must be
    found under the digest the harness makes today (or a fresh clone reruns ~3 h), and read back through the
    harness's own rows they give the figures the reading quotes."""
    np_, p, out, data, search, held = _glyphs_run()
    from benchmarks.proxy_task.comparison import comparison_jobs, paired_rows, strategy_row
    specs, named, _, gt_jobs = comparison_jobs(p, out, data, search, held, ISSUE32_ARMS, picks=False)
    # the DNA teacher's checkpoint is not committed (the pool would retrain it); its result is not read here
    done = _committed(np_, {n: spec for n, spec in {**named, **gt_jobs}.items() if n != 'dna_teacher'}, tmp_path)
    gt_top1 = np.mean([[done[f'gt_a{i:02d}_s{s}']['top1'] for i in range(16)] for s in range(4)], axis=0)
    rows = [strategy_row(s, [f'{s}_s{k}' for k in range(3)], specs, done, gt_top1) for s in ISSUE32_ARMS]
    by = {r['strategy']: r for r in rows}
    self_tau = {s: round(by[s]['self_tau'], 2) for s in ('cream_meta', 'cream_authors', 'spos', 'dna', 'mixpath')}
    assert self_tau == {'cream_meta': 0.03, 'cream_authors': 0.03, 'spos': 0.22, 'dna': 0.59, 'mixpath': 0.36}
    assert [s for s, r in by.items() if r['interpretable']] == ['dna']
    assert round(float(np.mean(by['dna']['tau'])), 2) == 0.55
    paired = paired_rows(rows)
    assert {s: (round(d['mean'], 2), round(d['lo'], 2), round(d['hi'], 2)) for s, d in paired.items()
            if s in ('cream_authors', 'cream_late')} == {'cream_authors': (-3.48, -5.53, -1.46),
                                                         'cream_late': (-1.32, -2.03, -0.6)}
    assert all(d['ahead'] == 0 for d in paired.values())
    # and the budget check read beside it: SPOS alone at twice the steps, two seeds
    p10 = dict(p, search_epochs=10, seeds=2)
    specs, named, _, _ = comparison_jobs(p10, out, data, search, held, ['spos'], picks=False)
    done.update(_committed(np_, named, tmp_path))
    spos10 = strategy_row('spos', ['spos_s0', 'spos_s1'], specs, done, gt_top1)
    assert (round(spos10['self_tau'], 2), round(float(np.mean(spos10['tau'])), 2)) == (0.59, 0.55)


def test_a_ground_truth_of_other_archs_is_not_reused(tmp_path, monkeypatch, capsys):
    """A stored ground truth is found by its parameters; when the archs drawn for them have changed (here: the file
    says other archs) it is set aside and rebuilt from the trainings of the archs drawn now, and said so."""
    np_ = _harness()
    monkeypatch.setitem(np_.JOBS, 'standalone', lambda spec: {'top1': _mmacs(spec), 'seconds': 1.0})
    p = dict(np_.QUICK)
    args = argparse.Namespace(out=str(tmp_path), data=None, jobs=1)
    first = np_.groundtruth(args, p)
    saved = next((tmp_path / 'groundtruth').glob('*.json'))
    tampered = dict(first, archs=first['archs'][::-1], top1=[t[::-1] for t in first['top1']])
    saved.write_text(json.dumps(tampered))
    capsys.readouterr()
    data = np_.data_dirs(p, tmp_path, None)[0]
    assert np_.reusable_groundtruth(p, tmp_path, data) is None and saved.with_suffix('.stale').is_file()
    assert 'holds other archs than the 4 drawn now (4 differ)' in capsys.readouterr().out
    saved.write_text(json.dumps(tampered))
    again = np_.groundtruth(args, p)
    assert again['archs'] == first['archs'] and again['top1'] == first['top1']
    assert 'reusing' not in capsys.readouterr().out
    assert np_.reusable_groundtruth(p, tmp_path, data) is not None


def _mmacs(spec):
    """A stand-alone job's stand-in: its arch's MACs in millions (a top-1 that differs by arch)."""
    from cream_det.space import Arch
    return Arch.from_dict(spec['arch']).macs / 1e6


def test_a_search_digest_covers_its_config_files_and_derived_values(tmp_path, monkeypatch):
    """A search result is reused under its spec's digest: editing a demo config, its ``_base_`` chain or what
    ``search_config`` derives must change the digest of the searches whose config it changes, and only theirs."""
    import shutil
    np_ = _harness()
    p = dict(np_.QUICK)
    conf = tmp_path / 'configs'
    shutil.copytree(np_.params.CONFIG_DIR, conf)
    monkeypatch.setattr(np_.params, 'CONFIG_DIR', conf)

    def digests():
        _, specs = np_.search_specs(p, tmp_path, tmp_path / 'd', tmp_path / 'd', tmp_path / 'h', list(np_.STRATEGIES))
        return {n: np_.spec_digest(s) for n, s in specs.items()}

    before = digests()
    cream = conf / 'cream_demo.py'
    cream.write_text(cream.read_text().replace('margin=5.0', 'margin=4.0'))      # Cream's strategy only
    after = digests()
    assert {n for n in before if before[n] != after[n]} == {n for n in before if n.startswith('cream')}
    base = conf / '_base_search.py'
    base.write_text(base.read_text().replace('find_unused_parameters=True', 'find_unused_parameters=False'))
    assert all(a != b for a, b in zip(after.values(), digests().values()))        # every strategy's base
    last = digests()
    real = np_.jobs.search_config

    def derived_otherwise(spec):                       # search_config deriving the matcher's lr another way
        cfg = real(spec)
        if spec['strategy'].startswith('cream'):
            cfg.model.strategy.meta_lr *= 2
        return cfg

    monkeypatch.setattr(np_.jobs, 'search_config', derived_otherwise)
    changed = digests()
    assert {n for n in last if last[n] != changed[n]} == {n for n in last if n.startswith('cream')}


def test_a_search_resumes_only_its_own_interrupted_run(tmp_path):
    np_ = _harness()
    work = tmp_path / 'run'
    assert np_.claim_work_dir(work, 'aaa') is False
    (work / 'last_checkpoint').write_text('epoch_3.pth')
    assert np_.claim_work_dir(work, 'aaa') is True and (work / 'last_checkpoint').is_file()
    assert np_.claim_work_dir(work, 'bbb') is False and not (work / 'last_checkpoint').exists()
    assert (work / 'spec_digest').read_text().strip() == 'bbb'


def test_a_resumed_search_reports_the_time_of_the_epochs_it_kept(tmp_path):
    """A search killed and resumed (the comparison outlives a session) reports the time its kept epochs took
    plus the time of its resumption, not the resumption alone; an epoch whose checkpoint was lost is redone
    and counted once."""
    from types import SimpleNamespace
    from mmengine.registry import HOOKS
    np_ = _harness()
    np_.register_hook()
    hook = HOOKS.get('ProxyConvergenceHook')(spec={}, every=100)        # no convergence point in these epochs
    runner = SimpleNamespace(work_dir=str(tmp_path), epoch=0)
    np_.jobs._INVOCATION.update(t0=time.time() - 30.0, before=0.0)     # the first run: started 30 s ago
    hook.before_train(runner)
    for e in range(3):                                                  # epochs 1-3, then killed
        runner.epoch = e
        hook.after_train_epoch(runner)
    first = json.loads((tmp_path / 'elapsed.json').read_text())
    assert set(first) == {'1', '2', '3'} and all(29.5 < v < 32 for v in first.values())
    np_.jobs._INVOCATION.update(t0=time.time() - 10.0, before=0.0)     # resumed from epoch 2's checkpoint
    runner.epoch = 2
    hook.before_train(runner)
    assert np_.jobs._INVOCATION['before'] == first['2']
    hook.after_train_epoch(runner)                                      # epoch 3 again
    again = json.loads((tmp_path / 'elapsed.json').read_text())
    assert set(again) == {'1', '2', '3'} and again['3'] == pytest.approx(first['2'] + 10.0, abs=1.5)


def test_only_a_finished_search_of_the_same_spec_is_scored(tmp_path):
    np_ = _harness()
    search = {'work_dir': str(tmp_path), 'params': {'search_epochs': 10}}
    assert not np_.holds_finished_search(search, 'aaa')                     # nothing there
    (tmp_path / 'spec_digest').write_text('aaa\n')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    assert not np_.holds_finished_search(search, 'aaa')                     # interrupted at epoch 3
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_10.pth'))
    assert np_.holds_finished_search(search, 'aaa') and not np_.holds_finished_search(search, 'bbb')


@pytest.mark.slow
def test_compare_harness_quick(tmp_path):
    """The whole comparison on a tiny setting, each job in its own process (--jobs 2, as a full run), then
    once more: every result is reused, nothing retrains."""
    cmd = [sys.executable, str(ROOT / 'benchmarks/nas_proxy.py'), 'compare', '--quick', '--jobs', '2', '--out',
           str(tmp_path)]
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1'}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    gt = json.loads((tmp_path / 'groundtruth.json').read_text())
    assert np.array(gt['top1']).shape == (2, 4) and len(gt['tau_seed_vs_seed']) == 1
    assert 'kendall tau seed-vs-seed:' in r.stdout
    res = json.loads((tmp_path / 'results.json').read_text())
    lo, hi = res['macs_range']
    assert [row['strategy'] for row in res['rows']] == list(_harness().STRATEGIES)
    for row in res['rows']:
        assert row['convergence_epochs'] == [1, 2, 3, 4, 5] and np.array(row['convergence']).shape == (1, 5)
        assert all(-1 <= t <= 1 for t in row['tau']) and all(0 <= t <= 100 for t in row['pick_top1'])
        rlo, rhi = row['macs_range']            # MixPath's pick: inside its own, multi-path range
        assert all(rlo <= m <= rhi for m in row['pick_macs']), row
        assert (rlo, rhi) == (lo, hi) or (row['strategy'] == 'mixpath' and rlo == lo and rhi > hi)
    # each search's ground-truth scores come from its own score job (its final checkpoint)
    scored = json.loads((tmp_path / 'jobs/score_spos_s0.json').read_text())['result']['gt_scores']
    assert len(scored) == 4 and all(0 <= v <= 100 for v in scored)
    mixpath = next(row for row in res['rows'] if row['strategy'] == 'mixpath')
    assert (tmp_path / 'runs/mixpath_s0/pareto.json').is_file() and mixpath['picks'][0]['stages']
    # every Cream arm keeps its per-epoch report; the authors' and late arms distil from their own step on
    cream = {row['strategy']: row['cream_epochs'][0] for row in res['rows'] if row['strategy'].startswith('cream')}
    assert set(cream) == {'cream_meta', 'cream_top1', 'cream_random', 'cream_authors', 'cream_authors_top1',
                          'cream_late'}
    assert all([e['epoch'] for e in epochs] == [1, 2, 3, 4, 5] for epochs in cream.values())
    warm = {s: sum(e['warmup_steps'] for e in epochs) for s, epochs in cream.items()}
    steps = sum(e['steps'] for e in cream['cream_late'])
    assert warm['cream_late'] == steps // 2 and 0 < warm['cream_authors'] < warm['cream_late']
    assert cream['cream_late'][-1]['m_count'] > 0 and cream['cream_late'][0]['m_count'] == 0
    # self-consistency needs two seeds (the quick run has one): no tau is read; the paired difference is there
    assert all(row['seed_pairs'] == [] and not row['interpretable'] for row in res['rows'])
    assert set(res['paired']) == set(cream) and res['paired']['cream_late']['pairs'] == 6
    assert set(res['baselines']) == {'MACs', 'params', 'k7 layers', 'e6 layers'}
    table = (tmp_path / 'results.md').read_text()
    assert 'Cream (meta matcher)' in table and 'DNA' in table and (tmp_path / 'results.png').stat().st_size > 10_000
    assert 'tau uninterpretable' in table and 'Cream minus SPOS' in table and '| k7 layers alone (no supernet) |' in table
    # one pool ran the ground truth's trainings beside the searches: the run's wall time counts them as jobs, every
    # job recorded its process's time, and the wall time is less than the jobs' time run one after another
    assert res['groundtruth_apart_seconds'] == 0 and res['jobs_without_process_time'] == 0
    assert all(res['job_seconds'][k] > 0 for k in ('DNA teacher', 'searches', 'scores', 'picks', 'ground truth'))
    assert 0 < res['pool_seconds'] < sum(res['job_seconds'].values()) and gt['seconds'] > 0
    assert set(res['data_seconds']) == {'shapes_32px_200', 'shapes_32px_search_val_100'} and 'from scratch' in table
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert again.returncode == 0 and 'job(s) to run' not in again.stdout and 'reusing' in again.stdout
    assert json.loads((tmp_path / 'results.json').read_text())['rows'] == res['rows']
    # --plan: the first epochs of two strategies and of the stand-alone recipe, the run projected from them
    plan = subprocess.run(cmd + ['--plan', '--strategies', 'spos', 'cream_late', '--no-picks'], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)
    assert plan.returncode == 0, (plan.stdout + plan.stderr)[-3000:]
    planned = json.loads((tmp_path / 'plan.json').read_text())
    assert set(planned['probes']) == {'plan_spos', 'plan_cream_late', 'plan_standalone'}
    assert set(planned['seconds']) == {'spos_s0', 'cream_late_s0', 'score_spos_s0', 'score_cream_late_s0'}
    assert planned['wall'] > 0 and 'Projected wall time of the full run at --jobs 2' in plan.stdout


def test_standalone_warmup_ramps_then_follows_the_cosine():
    import math
    from cream_det.search.ranking_tool import warmup_cosine
    total, ramp = 100, 10
    factors = [warmup_cosine(t, total, ramp) for t in range(total + 1)]
    assert factors[0] == pytest.approx(0.1 * 0.5 * (1 + math.cos(0)))          # 1/ramp of the peak at the start
    assert all(a < b for a, b in zip(factors[:ramp - 1], factors[1:ramp]))       # rising through the ramp
    assert factors[ramp] == pytest.approx(0.5 * (1 + math.cos(math.pi * ramp / total)))   # the plain cosine after it
    assert factors[total] == pytest.approx(0.0, abs=1e-12)


def test_standalone_warmup_changes_the_training_and_zero_keeps_it(tmp_path):
    """warmup_epochs=0 is the cosine schedule as before (same weights); a ramp trains differently."""
    import torch
    from cream_det.search.ranking_tool import train_standalone
    from cream_det.space import CREAM_SPACE, ArchSampler
    arch = ArchSampler(CREAM_SPACE, 32, 10, depths=(1,) * 5, seed=0).sample()
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(3)]
    plain = train_standalone(arch, batches, 1, lr=0.1, seed=0).state_dict()
    again = train_standalone(arch, batches, 1, lr=0.1, seed=0, warmup_epochs=0.0).state_dict()
    ramped = train_standalone(arch, batches, 1, lr=0.1, seed=0, warmup_epochs=1.0).state_dict()
    key = 'conv_stem.weight'
    assert torch.equal(plain[key], again[key]) and not torch.allclose(plain[key], ramped[key])


def test_ground_truth_archs_lie_in_the_band_of_the_spaces_macs():
    """The band sets the MACs range every arch set and search shares: a wider band, a wider range."""
    np_ = _harness()
    p = dict(np_.QUICK, archs=8, paths=8)
    (lo, hi), gt, paths = np_.arch_sets(dict(p, band=[25.0, 75.0]))
    (wlo, whi), wgt, _ = np_.arch_sets(dict(p, band=[5.0, 95.0]))
    assert wlo < lo < hi < whi
    assert all(lo <= a.macs <= hi for a in gt + paths) and all(wlo <= a.macs <= whi for a in wgt)


def test_width_selection_spreads_the_ground_truth_over_wide_layers_and_keeps_old_digests():
    """gt_select='width': every count of e6 layers (0 to 5) gets its share of the archs, all inside the band;
    the default ('macs') leaves the archs and a ground truth's digest as they were before the key existed."""
    np_ = _harness()
    p = dict(np_.FULL, archs=12, paths=2, gt_select='macs')
    _, by_macs, _ = np_.arch_sets(p)
    (lo, hi), by_width, paths = np_.arch_sets(dict(p, gt_select='width'))
    wide = sorted(sum(op.expansion == 6 for st in a.stages for op in st) for a in by_width)
    assert wide == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5] and all(lo <= a.macs <= hi for a in by_width)
    assert sorted(sum(op.expansion == 6 for st in a.stages for op in st) for a in by_macs) != wide
    assert paths == np_.arch_sets(p)[2]                                     # the searches' paths do not move
    assert 'gt_select' not in np_.gt_params(p)
    assert np_.gt_params(dict(p, gt_select='width')) != np_.gt_params(p)


def test_kernel_selection_counts_only_the_layers_where_a_kernel_can_matter():
    """gt_select='kernel': a k x k depthwise conv on an H x H map with 2H-1 <= 3 is the same conv for every kernel
    of the space, so a 32 px arch has 3 layers where k7 can matter (maps 16, 8, 4) and a 64 px one 5; every count
    (0 to 3 at 32 px) gets its share of the archs, inside the band, and the ground truth's digest moves."""
    from cream_det.space import Arch
    from cream_det.space.spec import Op
    np_ = _harness()
    big = Arch(((Op(7, 6),),) * 5, 32, 34)
    assert np_.top_layers(big, 'kernel', 32) == 3 and np_.top_layers(big, 'expansion', 32) == 5
    assert np_.top_layers(Arch(((Op(7, 6),),) * 5, 64, 34), 'kernel', 64) == 5
    late = Arch(((Op(3, 4),),) * 3 + ((Op(7, 4),),) * 2, 32, 34)          # k7 only on the 2x2 maps
    assert np_.top_layers(late, 'kernel', 32) == 0
    p = dict(np_.FULL, task='glyphs', archs=12, paths=2, gt_select='kernel')
    (lo, hi), by_kernel, paths = np_.arch_sets(p)
    assert sorted(np_.top_layers(a, 'kernel', 32) for a in by_kernel) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert all(lo <= a.macs <= hi for a in by_kernel) and len(set(by_kernel)) == 12
    assert paths == np_.arch_sets(dict(p, gt_select='macs'))[2]
    assert len({json.dumps(np_.gt_params(dict(p, gt_select=s)), sort_keys=True)
                for s in ('macs', 'width', 'kernel')}) == 3


def test_table_shows_the_macs_alone_baseline():
    """A supernet's tau only says more than "bigger is better" above tau(MACs, top-1): the table shows both."""
    np_ = _harness()
    row = dict(strategy='spos', tau=[0.1, 0.3], convergence_epochs=[1, 2], convergence=[[10, 20], [12, 22]],
               pick_top1=[90.0, 91.0], pick_macs=[2e6, 2e6], seed_pairs=[0.2], self_tau=0.2, tau_of_mean=0.25,
               interpretable=False)
    res = dict(params=dict(np_.QUICK), macs_range=[1e6, 3e6], rows=[row], seconds=600.0, groundtruth_seconds=1200.0,
               baselines={'MACs': -0.37, 'params': 0.1, 'k7 layers': 0.7, 'e6 layers': 0.0}, paired={},
               jobs=2, pool_seconds=4200.0, groundtruth_apart_seconds=1200.0, data_seconds=None,
               job_seconds={'DNA teacher': 60.0, 'searches': 7200.0, 'scores': 0.0, 'picks': 1080.0, 'ground truth': 0.0},
               groundtruth=dict(top1=[[90, 91], [92, 89]], macs=[1e6, 2e6], tau_seed_vs_seed=[0.61],
                                tau_macs_vs_top1=-0.37))
    table = np_.results_table(res)
    assert '| MACs alone (no supernet) | | -0.37 |' in table and '| SPOS | 11.0 / 21.0 | 0.20 ± 0.14 |' in table
    assert 'tau seed vs seed 0.61' in table
    # two seeds 2 points apart on each arch, means 1 point apart: all noise, nothing the seeds can agree on
    assert ('noise of one run 1.41 points, spread of the archs 0.00: two seeds agree with tau 0.00 on average, two '
            'ground truths of 2 seeds each with 0.00' in table)
    # four seeds: the halves' means against each other, measured, beside what the noise and spread expect
    four = np_.stability([[90, 91, 92], [90, 92, 91], [91, 91, 93], [89, 92, 92]])
    assert ('two ground truths of 4 seeds each with' in four and "means of 2 seeds against the other 2's (expected"
            in four and '0+1 / 2+3 0.82, 0+2 / 1+3 0.33, 0+3 / 1+2 1.00 (mean 0.72)' in four)
    assert ('from scratch at --jobs 2: 1.50 h = the pool\'s jobs 70 min' in table and 'searches 120, picks 18)' in table
            and '+ the ground truth, made apart, 20 min' in table and 'data generation not counted' in table
            and 'this invocation 10 min' in table)
    res.update(data_seconds={'a': 600.0, 'b': 300.0}, groundtruth_apart_seconds=0.0)
    assert 'from scratch at --jobs 2: 1.42 h' in np_.results_table(res) and 'made apart' not in np_.results_table(res)


def test_makespan_schedules_jobs_as_the_pool_runs_them():
    """A run's wall time rebuilt from its jobs' seconds: each free worker takes the first job whose needs are done,
    so a long job last leaves a worker idle, and a job waits for what it needs."""
    np_ = _harness()
    assert np_.makespan(dict(a=10, b=10, c=10, d=10), 2) == 20
    assert np_.makespan(dict(a=10, b=10, c=30), 2) == 40          # c starts when the first 10 s job ends
    assert np_.makespan(dict(c=30, a=10, b=10), 2) == 30
    assert np_.makespan(dict(a=5, b=7), 1) == 12 and np_.makespan({}, 2) == 0
    # b needs a: the second worker waits for a, then b runs; c (ready) is taken first by the idle worker
    assert np_.makespan(dict(a=10, b=10, c=5), 2, {'b': ('a',)}) == 20
    assert np_.makespan(dict(a=10, b=10), 2, {'b': ('a',)}) == 20          # not 10: b cannot start beside a
    with pytest.raises(ValueError):
        np_.makespan(dict(b=1), 2, {'b': ('a',)})


class _FakeJobs:
    """Pool._one without processes: sleeps the job's seconds and stores its result, logging starts and ends."""

    def __init__(self, pool, fail=()):
        self.pool, self.fail, self.log = pool, set(fail), []

    def __call__(self, name, spec):
        import threading
        import time
        self.log.append(('start', name, threading.get_ident()))
        time.sleep(spec['sleep'])
        self.log.append(('end', name))
        if name in self.fail:
            raise SystemExit(f'job {name} failed')
        (self.pool.dir / f'{name}.json').write_text(json.dumps(
            {'spec_digest': _harness().spec_digest(spec), 'result': {'value': spec.get('value', name)}}))


@pytest.mark.parametrize('workers', [1, 2])
def test_pool_starts_a_job_once_its_needs_are_done_and_passes_their_results(tmp_path, workers):
    np_ = _harness()
    pool = np_.Pool(tmp_path, workers)
    pool._one = fake = _FakeJobs(pool)
    named = {'search': dict(sleep=0.3, value=7), 'other': dict(sleep=0.05),
             'pick': lambda res: dict(sleep=0.0, value=res['search']['value'] * 2)}
    done = pool.run(named, {'pick': ('search',)})
    assert done['pick'] == {'value': 14} and list(done) == ['search', 'other', 'pick']
    order = [(e[0], e[1]) for e in fake.log]
    assert order.index(('start', 'pick')) > order.index(('end', 'search'))
    if workers == 2:       # 'other' ran beside 'search', not after it
        assert order.index(('start', 'other')) < order.index(('end', 'search'))
    fake.log.clear()
    assert pool.run(named, {'pick': ('search',)}) == done and not fake.log       # all stored: nothing runs
    with pytest.raises(ValueError, match='needs'):
        pool.run({'pick': dict(sleep=0), 'search': dict(sleep=0)}, {'pick': ('search',)})   # a need comes later


def test_pool_a_failed_job_stops_its_dependents_and_raises(tmp_path):
    np_ = _harness()
    pool = np_.Pool(tmp_path, 2)
    pool._one = fake = _FakeJobs(pool, fail={'search'})
    with pytest.raises(SystemExit, match='search failed'):
        pool.run({'search': dict(sleep=0.1), 'pick': lambda res: dict(sleep=0)}, {'pick': ('search',)})
    assert ('start', 'pick') not in [(e[0], e[1]) for e in fake.log]


def test_a_bad_band_is_one_clear_error(capsys):
    np_ = _harness()
    for band in (['80', '20'], ['-5', '50'], ['10', '101']):
        with pytest.raises(SystemExit) as e:
            np_.main(['groundtruth', '--band', *band, '--out', 'unused'])
        assert e.value.code == 2 and '--band' in capsys.readouterr().err


def test_standalone_zero_head_starts_at_chance_and_learns():
    """head_init='zero': every logit 0 before the first step (the loss at ln 10), the head still learns from there;
    without it the first logits are timm's, as before."""
    import math
    import torch
    import torch.nn.functional as F
    from cream_det.search.ranking_tool import train_standalone
    from cream_det.space import CREAM_SPACE, ArchSampler
    arch = ArchSampler(CREAM_SPACE, 32, 10, depths=(1,) * 5, seed=0).sample()
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(3)]
    x, y = batches[0]
    with torch.no_grad():
        start = train_standalone(arch, batches, 0, seed=0, head_init='zero')
        assert torch.count_nonzero(start(x)) == 0 and F.cross_entropy(start(x), y).item() == pytest.approx(math.log(10))
        assert torch.count_nonzero(train_standalone(arch, batches, 0, seed=0)(x)) > 0
    trained = train_standalone(arch, batches, 1, lr=0.1, seed=0, head_init='zero')
    plain = train_standalone(arch, batches, 1, lr=0.1, seed=0)
    assert torch.count_nonzero(trained.get_classifier().weight) > 0
    assert not torch.allclose(trained.state_dict()['conv_stem.weight'], plain.state_dict()['conv_stem.weight'])


def test_bad_head_flags_are_one_clear_error(capsys):
    np_ = _harness()
    for flag in (['--head', 'uniform'], ['--search-head', 'uniform']):
        with pytest.raises(SystemExit) as e:
            np_.main(['groundtruth', *flag, '--out', 'unused'])
        assert e.value.code == 2 and flag[0] in capsys.readouterr().err
    from cream_det.search.ranking_tool import train_standalone
    with pytest.raises(ConfigError, match='head_init'):
        train_standalone(np_.teacher_arch(np_.QUICK), [], 0, head_init='uniform')


def test_standalone_clip_changes_the_training_only_when_it_bites():
    """clip_grad=0 trains as before (same weights); a small clip changes the training, a clip above every
    gradient norm does not."""
    import torch
    from cream_det.search.ranking_tool import train_standalone
    from cream_det.space import CREAM_SPACE, ArchSampler
    arch = ArchSampler(CREAM_SPACE, 32, 10, depths=(1,) * 5, seed=0).sample()
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(3)]
    key = 'conv_stem.weight'
    plain = train_standalone(arch, batches, 1, lr=0.1, seed=0, warmup_epochs=1.0).state_dict()[key]
    zero = train_standalone(arch, batches, 1, lr=0.1, seed=0, warmup_epochs=1.0, clip_grad=0.0).state_dict()[key]
    huge = train_standalone(arch, batches, 1, lr=0.1, seed=0, warmup_epochs=1.0, clip_grad=1e9).state_dict()[key]
    tight = train_standalone(arch, batches, 1, lr=0.1, seed=0, warmup_epochs=1.0, clip_grad=1e-3).state_dict()[key]
    assert torch.equal(plain, zero) and torch.allclose(plain, huge) and not torch.allclose(plain, tight)


def test_a_new_recipe_reruns_only_the_jobs_it_changes(tmp_path):
    """Searches are the expensive part: a new stand-alone recipe (the ground truth's: its lr, clipping, or a
    larger set of its own) must keep them, except DNA's, whose teacher it retrains, and so must another set of
    ground-truth archs; a new search budget must keep the stand-alone jobs."""
    np_ = _harness()
    p = dict(np_.QUICK)
    strategies = list(np_.STRATEGIES)

    def specs(q):
        out = tmp_path / 'out'
        data, search, held = (out / f"shapes_{q['size']}px_{q['num_train']}",
                              out / f"shapes_{q['size']}px_{q['search_train']}", out / 'held')
        return np_.search_specs(q, out, data, search, held, strategies)

    def digests(q):
        teacher, searches = specs(q)
        return np_.spec_digest(teacher), {n: np_.spec_digest(s) for n, s in searches.items()}

    teacher, searches = digests(p)
    for other in (dict(p, lr=p['lr'] * 2, clip=1.0), dict(p, num_train=p['num_train'] * 2, epochs=2),
                  dict(p, head='zero')):
        teacher_new, searches_new = digests(other)
        assert teacher_new != teacher
        assert {n for n in searches if searches_new[n] != searches[n]} == {'dna_s0'}
    # another set of ground-truth archs (here: more of them) is rescored from the searches' checkpoints
    assert digests(dict(p, archs=p['archs'] + 4)) == (teacher, searches)
    for search_budget in (dict(p, search_lr=p['search_lr'] / 2), dict(p, search_head='zero')):
        teacher_s, searches_s = digests(search_budget)
        assert teacher_s == teacher and all(searches_s[n] != searches[n] for n in searches)
    # the supernets' head init, off its default, searches in work dirs of its own (the default's are kept)
    assert specs(p)[1]['spos_s0']['work_dir'].endswith('runs/spos_s0')
    assert specs(dict(p, search_head='zero'))[1]['spos_s0']['work_dir'].endswith('runs/spos_s0_search_head-zero')
    teacher_spec, search = specs(dict(p, num_train=p['num_train'] * 2))
    assert teacher_spec['data'].endswith(f"_{p['num_train'] * 2}") and search['spos_s0']['data'].endswith(
        f"_{p['search_train']}")
    assert all('teacher' not in s for n, s in search.items() if not n.startswith('dna'))


def test_each_ground_truth_recipe_is_kept_and_reused(tmp_path, monkeypatch, capsys):
    """Trying another stand-alone recipe must not lose the ground truth of the last one: going back to it
    reuses it (no job reruns), and a new recipe trains anew."""
    np_ = _harness()
    trained = []

    def fake(spec):
        trained.append(spec['params']['lr'])
        return {'top1': float(len(trained))}

    monkeypatch.setitem(np_.JOBS, 'standalone', fake)
    p = dict(np_.QUICK)
    args = argparse.Namespace(out=str(tmp_path), data=None, jobs=1)
    first = np_.groundtruth(args, p)
    assert len(trained) == p['archs'] * p['gt_seeds']
    other = np_.groundtruth(args, dict(p, lr=p['lr'] / 2))
    assert len(trained) == 2 * p['archs'] * p['gt_seeds'] and other['top1'] != first['top1']
    capsys.readouterr()
    again = np_.groundtruth(args, p)
    assert len(trained) == 2 * p['archs'] * p['gt_seeds'] and again == first
    assert 'reusing' in capsys.readouterr().out
    assert len(list((tmp_path / 'groundtruth').glob('*.json'))) == 2


def test_the_glyph_task_moves_every_job_to_its_own_data_classes_and_work_dirs(tmp_path):
    """--task glyphs: 34 classes in every arch, supernet and stand-alone job, its own data dirs, DNA teacher and
    search work dirs (the shapes' results and checkpoints stay), while the shapes' specs keep their digests."""
    np_ = _harness()
    p = dict(np_.QUICK)
    g = dict(p, task='glyphs')
    assert np_.pick(p, np_.SEARCH_KEYS) == {k: p[k] for k in np_.SEARCH_KEYS if k not in np_.LATER_KEYS}
    assert np_.pick(g, np_.SEARCH_KEYS)['task'] == 'glyphs' and np_.pick(g, np_.STANDALONE_KEYS)['task'] == 'glyphs'
    (lo, hi), gt, paths = np_.arch_sets(g)
    assert {a.num_classes for a in gt + paths} == {34} and {a.num_classes for a in np_.arch_sets(p)[1]} == {10}
    assert np_.teacher_arch(g).num_classes == 34
    out = tmp_path / 'out'
    teacher, searches = np_.search_specs(g, out, out / 'd', out / 's', out / 'h', ['spos', 'dna'])
    assert searches['spos_s0']['work_dir'].endswith('runs/spos_s0_task-glyphs')
    assert searches['dna_s0']['teacher'].endswith('dna_teacher_glyphs.pth') == teacher['save'].endswith(
        'dna_teacher_glyphs.pth') is True
    cfg = np_.search_config(dict(searches['spos_s0'], teacher=teacher['save']))
    assert cfg.model.num_classes == 34
    data, search, held = np_.make_data(dict(g, num_train=34, search_train=34, num_val=34, search_val=34), out, None)
    assert [d.name for d in (data, search, held)] == ['glyphs_32px_34', 'glyphs_32px_34', 'glyphs_32px_search_val_34']
    assert len(list((data / 'train').iterdir())) == 34


def test_the_task_brings_its_own_full_settings_and_flags_still_win():
    np_ = _harness()
    ns = lambda **kw: argparse.Namespace(**{**{k: None for k in np_.FULL}, **kw}, quick=False)   # noqa: E731
    assert np_.settings(ns()) == np_.FULL
    glyphs = np_.settings(ns(task='glyphs'))
    assert glyphs == {**np_.FULL, 'task': 'glyphs', **np_.TASK_FULL['glyphs']} and glyphs['num_val'] == 10000
    assert glyphs['gt_select'] == 'kernel'
    assert np_.settings(ns(task='glyphs', num_val=3000))['num_val'] == 3000
    assert np_.settings(argparse.Namespace(**{k: None for k in np_.FULL}, quick=True)) == np_.QUICK


def test_self_consistency_reads_a_tau_only_from_a_supernet_that_agrees_with_itself():
    """Seed-vs-seed taus of a strategy's own scores, their mean against the bar (0.5), and the tau of the scores
    averaged over seeds against the ground truth."""
    np_ = _harness()
    truth = [1.0, 2.0, 3.0, 4.0]
    steady = np_.statistics.self_consistency([[1, 2, 3, 4], [1, 2, 4, 3], [2, 1, 3, 4]], truth)
    assert steady['seed_pairs'] == pytest.approx([2 / 3, 2 / 3, 1 / 3]) and steady['self_tau'] == pytest.approx(5 / 9)
    assert steady['interpretable'] and steady['tau_of_mean'] == pytest.approx(1.0)
    shaky = np_.statistics.self_consistency([[1, 2, 3, 4], [4, 3, 2, 1]], truth)
    assert shaky['self_tau'] == pytest.approx(-1.0) and not shaky['interpretable']
    assert not np_.statistics.self_consistency([[1, 2, 3, 4]], truth)['interpretable']       # one seed: no estimate
    with pytest.raises(ValueError, match='ground-truth archs'):
        np_.statistics.self_consistency([[1, 2, 3]], truth)


def test_paired_difference_has_the_interval_its_pairs_give():
    """Known inputs, known intervals: a constant difference has a zero-width interval at it; one seed of 100 pairs
    differing by 0 or 2 has the mean's normal interval, 1 +- 1.645 x 1.005 / 10 at 90 %."""
    np_ = _harness()
    pd = np_.statistics.paired_difference
    rng = np.random.default_rng(0)
    b = rng.normal(30, 10, size=(3, 40))
    same = pd(b + 1.5, b)
    assert (same['mean'], same['lo'], same['hi']) == pytest.approx((1.5, 1.5, 1.5))
    assert (same['pairs'], same['ahead']) == (120, 3)
    d = np.array([[0.0, 2.0] * 50])
    half = pd(d, np.zeros_like(d))
    assert half['mean'] == pytest.approx(1.0) and half['lo'] == pytest.approx(0.835, abs=0.03)
    assert half['hi'] == pytest.approx(1.165, abs=0.03) and half['level'] == 0.9
    with pytest.raises(ValueError, match='same'):
        pd(b, b[:2])


def test_paired_difference_fails_if_the_pairing_is_dropped():
    """Each seed (and path) has a level of its own shared by both strategies, and a leads b by 1 point in every
    pair: paired, the interval is tight around 1; the same numbers unpaired (b's seeds and paths shuffled) would
    put 0 inside it, so a difference of means or a shuffled pairing fails here."""
    np_ = _harness()
    rng = np.random.default_rng(1)
    level = rng.normal(0, 10, size=(3, 1)) + rng.normal(0, 10, size=(1, 50))
    a, b = level + 1.0 + rng.normal(0, 0.1, size=(3, 50)), level
    paired = np_.statistics.paired_difference(a, b)
    assert 0.9 < paired['lo'] < paired['hi'] < 1.1 and paired['ahead'] == 3
    shuffled = rng.permutation(b.ravel()).reshape(b.shape)
    unpaired = np_.statistics.paired_difference(a, shuffled)
    assert unpaired['lo'] < 0 < unpaired['hi']


def test_the_cream_arms_run_their_own_schedules():
    """cream_authors: the authors' warm-up (21/120 of the search) and board entries scored on their 1,024 images
    (16 batches of 64); cream_late: the same from half-way; the first three arms keep their schedule."""
    np_ = _harness()
    p = dict(np_.FULL, task='glyphs', **np_.TASK_FULL['glyphs'])
    (lo, hi), _, paths = np_.arch_sets(dict(p, paths=2))
    base = dict(kind='search', params=p, data='d', held_out='h', macs_range=[lo, hi], seed=0, work_dir='w',
                paths=[a.to_dict() for a in paths])
    st = {s: np_.search_config(dict(base, strategy=s)).model.strategy
          for s in ('cream_meta', 'cream_authors', 'cream_authors_top1', 'cream_late')}
    assert st['cream_authors'].warmup_fraction == pytest.approx(21 / 120) and st['cream_late'].warmup_fraction == 0.5
    # the fixed-teacher control on the authors' schedule: the same schedule, the top-1 teacher
    top1, meta = dict(st['cream_authors_top1']), dict(st['cream_authors'])
    assert top1.pop('teacher') == 'top1' and meta.pop('teacher') == 'meta' and top1 == meta
    assert st['cream_authors'].board_eval_batches == st['cream_late'].board_eval_batches == 1024 // 64
    assert st['cream_authors'].warmup_epochs is None and st['cream_authors'].teacher == 'meta'
    assert st['cream_meta'].warmup_epochs == 1 and 'warmup_fraction' not in st['cream_meta']
    assert 'board_eval_batches' not in st['cream_meta']
    # the matcher's lr follows the distillation steps: more of them for the authors' arm than for the late start
    assert st['cream_authors'].meta_lr < st['cream_late'].meta_lr


def test_the_two_knob_ground_truth_crosses_k7_and_e6_layers_at_matched_macs(tmp_path):
    """gt_select='knobs': every k7 count where a kernel can matter (0-3 at 32 px) x two e6 counts, two archs a cell,
    their MACs within 2 % of one value, so a supernet must recover both knobs; DNA's teacher sits at neither end of
    either knob, is not a ground-truth arch, and has a checkpoint of its own."""
    np_ = _harness()
    p = dict(np_.FULL, task='glyphs', gt_select='knobs', paths=2)
    (lo, hi), archs, _ = np_.arch_sets(p)
    cells = sorted((np_.top_layers(a, 'kernel', 32), np_.top_layers(a, 'expansion', 32)) for a in archs)
    e6 = sorted({e for _, e in cells})
    assert len(e6) == 2 and e6[1] == e6[0] + 1
    assert cells == sorted((k, e) for k in range(4) for e in e6 for _ in range(2)) and len(set(archs)) == 16
    macs = np.array([a.macs for a in archs], dtype=float)
    assert macs.max() / macs.min() < 1.04 and all(lo <= m <= hi for m in macs)
    teacher = np_.teacher_arch(p)
    assert 0 < np_.top_layers(teacher, 'kernel', 32) < 3 and 0 < np_.top_layers(teacher, 'expansion', 32) < 5
    assert teacher not in archs
    t_spec, specs = np_.search_specs(p, tmp_path, tmp_path / 'd', tmp_path / 's', tmp_path / 'h', ['dna'])
    assert t_spec['save'].endswith('dna_teacher_glyphs_knobs.pth') and specs['dna_s0']['teacher'] == t_spec['save']
    assert np_.gt_params(p) != np_.gt_params(dict(p, gt_select='kernel'))
    with pytest.raises(SystemExit, match='multiple of 8'):
        np_.arch_sets(dict(p, archs=12))


def test_plan_projects_each_job_from_the_first_epochs_and_schedules_them(tmp_path):
    """compare --plan: a search is its first epoch x the epochs + its convergence points + its final pick's archs
    (SPOS's evolution) on the whole held-out set; a score the ground-truth archs on it; a stand-alone job its epoch x
    the epochs; a stored job its measured time; all scheduled as the pool runs them."""
    np_ = _harness()
    p = dict(np_.QUICK, search_epochs=10, points=5, epochs=2, search_val=400, conv_val=100, archs=4, seeds=1)
    out = tmp_path
    specs, named, needs, gt_jobs = np_.comparison_jobs(p, out, out / 'd', out / 'd', out / 'h', ['spos', 'cream_meta'])
    probes = {'plan_spos': {'epoch_seconds': 10.0, 'score_seconds': 6.0, 'paths': 6},
              'plan_cream_meta': {'epoch_seconds': 20.0, 'score_seconds': 3.0, 'paths': 6},
              'plan_standalone': {'epoch_seconds': 7.0}}
    stored = {'gt_a00_s0': {'seconds': 100.0}}
    res = np_.planning.project(p, probes, named, needs, gt_jobs, stored, jobs=2)
    s = res['seconds']
    evolution = np_.search_config(dict(specs['spos_s0'], teacher='t')).evolution
    candidates = evolution['population'] * evolution['generations']
    spos_arch = 6.0 / 6 * 400 / 100                        # one path's scoring, on 4 x the images
    assert s['spos_s0'] == pytest.approx(10 * 10.0 + 5 * 6.0 + candidates * spos_arch)
    assert s['cream_meta_s0'] == pytest.approx(10 * 20.0 + 5 * 3.0)
    assert s['score_spos_s0'] == pytest.approx(4 * spos_arch) and s['pick_spos_s0'] == 14.0
    assert s['gt_a00_s0'] == 100.0 and s['gt_a01_s0'] == 14.0 and res['parts']['gt_a00_s0'] == 'stored'
    assert res['wall'] == pytest.approx(np_.makespan(s, 2, needs)) and res['wall'] < sum(s.values())
    # what the command still runs: the stored job is read back, not rerun
    assert res['wall_remaining'] == pytest.approx(np_.makespan(dict(s, gt_a00_s0=0.0), 2, needs))
    assert res['wall_remaining'] < res['wall']
    assert 'Projected wall time of the full run at --jobs 2' in np_.planning.plan_table(
        dict(res, params=p, strategies=['spos', 'cream_meta'], jobs=2, probes=probes))


def test_a_stored_result_whose_checkpoint_is_gone_runs_again(tmp_path, monkeypatch):
    """DNA's teacher is a stand-alone job that saves the checkpoint DNA's searches load: its result (committed, or
    kept) without that file (not committed) is no result, or a fresh clone's DNA search would fail on it."""
    np_ = _harness()
    calls = []

    def train(spec):
        calls.append(1)
        Path(spec['save']).write_text('weights')
        return {'top1': 1.0, 'seconds': 0.0}

    monkeypatch.setitem(np_.JOBS, 'count', train)
    spec = {'kind': 'count', 'save': str(tmp_path / 'teacher.pth')}
    pool = np_.Pool(tmp_path, jobs=1)
    pool.run({'dna_teacher': spec})
    pool.run({'dna_teacher': spec})
    assert len(calls) == 1
    (tmp_path / 'teacher.pth').unlink()
    pool.run({'dna_teacher': spec})
    assert len(calls) == 2 and (tmp_path / 'teacher.pth').is_file()
