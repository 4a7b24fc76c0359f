"""DNA: teacher taps, block-wise training, exact combination search, and the search tool end to end."""
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cream_det  # noqa: F401
from cream_det.engine import load_config
from cream_det.errors import CheckpointError, ConfigError, SpaceError
from cream_det.models import build_subnet
from cream_det.models.checkpoint import save_subnet_checkpoint
from cream_det.models.supernet import Supernet
from cream_det.search.combination import best_combination
from cream_det.space import CREAM_SPACE, Arch, SearchSpace

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / 'tests/scripts/search_toy_cfg.py'
TOY_DNA = ROOT / 'tests/scripts/search_toy_dna_cfg.py'


# ---- the exact combination search ----------------------------------------------------------------
def _brute(macs, losses, lo, hi, fixed):
    best = None
    for choice in itertools.product(*[range(len(m)) for m in macs]):
        t = fixed + sum(m[c] for m, c in zip(macs, choice))
        v = sum(x[c] for x, c in zip(losses, choice))
        if lo <= t <= hi and np.isfinite(v) and (best is None or v < best[0]):
            best = (v, t, choice)
    return best


@pytest.mark.parametrize('seed', range(60))
def test_combination_search_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_stages = int(rng.integers(1, 5))
    macs = [rng.integers(0, 50, size=int(rng.integers(1, 7))) for _ in range(n_stages)]
    losses = [rng.random(len(m)) * 4 for m in macs]
    if seed % 2:                                # exact ties in loss
        losses = [np.round(x, 1) for x in losses]
    if seed % 4 in (1, 2):                      # cheap candidates distil best: the lower bound binds
        losses = [x + m / 10 for x, m in zip(losses, macs)]
    if seed % 7 == 0:                           # a diverged candidate is never chosen
        losses[0][0] = np.nan
    fixed = int(rng.integers(0, 20))
    lo_t = fixed + sum(int(m.min()) for m in macs)
    hi_t = fixed + sum(int(m.max()) for m in macs)
    a, b = sorted(rng.integers(lo_t - 5, hi_t + 5, size=2))
    if seed % 3 == 0:
        a = 0                                   # only the upper bound binds
    want = _brute(macs, losses, a, b, fixed)
    if want is None:
        with pytest.raises(SpaceError, match='holds no combination'):
            best_combination(macs, losses, (a, b), fixed)
        return
    got = best_combination(macs, losses, (a, b), fixed)
    assert a <= got.macs <= b                                   # inside the budget
    assert got.macs == fixed + sum(int(m[c]) for m, c in zip(macs, got.choice))
    assert got.loss == pytest.approx(sum(float(x[c]) for x, c in zip(losses, got.choice)))
    assert got.loss == pytest.approx(want[0])                   # the true optimum


def test_combination_search_when_the_lower_bound_binds():
    """Cheap candidates distil best, the range sits high: branch and bound, still exact."""
    rng = np.random.default_rng(0)
    macs = [rng.integers(100, 1000, size=9) for _ in range(5)]
    losses = [rng.random(9) + m / 500.0 for m in macs]
    lo, hi = 3000, 3100
    got = best_combination(macs, losses, (lo, hi))
    want = _brute(macs, losses, lo, hi, 0)
    assert lo <= got.macs <= hi and got.loss == pytest.approx(want[0])
    # the Cream space's size (36 candidates per stage at depth 2, 5 stages: 6e7 combinations) stays quick
    macs = [rng.integers(100, 1000, size=36) for _ in range(5)]
    losses = [rng.random(36) + m / 500.0 for m in macs]
    got = best_combination(macs, losses, (lo, hi))
    assert lo <= got.macs <= hi


def test_combination_search_infeasible_budget_is_one_clear_error():
    with pytest.raises(SpaceError, match=r'holds no combination .* totals reach from 0.00M to 0.00M'):
        best_combination([[1, 2], [3, 4]], [[0.1, 0.2], [0.3, 0.4]], (100, 200))
    with pytest.raises(SpaceError, match='skip the range'):
        best_combination([[0, 10], [0, 10]], [[0.1, 0.2], [0.3, 0.4]], (11, 19))


# ---- teacher and block-wise training -------------------------------------------------------------
def _tiny_space():
    from mmengine.config import Config
    return Config.fromfile(str(TOY)).tiny_space.to_dict()


@pytest.fixture(scope='module')
def teachers(tmp_path_factory, one_thread):
    """Random-init teachers saved as checkpoints: a Cream net of the toy space (keys under ``net.``, as a
    tools/retrain.py checkpoint) and a timm MobileNetV3 with other widths and no stride-2 map."""
    import timm
    d = tmp_path_factory.mktemp('teachers')
    sp = SearchSpace.from_dict(_tiny_space())
    torch.manual_seed(0)
    arch = Arch((('k3e3',), ('k5e3', 'k3e6', 'k3e3')), 32, 5, sp)
    net = build_subnet(arch)
    cream = save_subnet_checkpoint(d / 'cream_teacher.pth', {'net.' + k: v for k, v in net.state_dict().items()}, arch)
    mnv3 = timm.create_model('mobilenetv3_small_050', pretrained=False, num_classes=5)
    torch.save({'state_dict': mnv3.state_dict()}, d / 'mnv3.pth')
    resnet = timm.create_model('resnet10t', pretrained=False, num_classes=5)
    torch.save({'state_dict': resnet.state_dict()}, d / 'resnet.pth')
    return {'cream': cream, 'mnv3': d / 'mnv3.pth', 'resnet': d / 'resnet.pth'}


def _model(teacher, **strategy):
    from cream_det.engine.supernet_search import SupernetSearch
    return SupernetSearch(strategy=dict(type='dna', teacher=teacher, **strategy), macs_range=(0, 10e6),
                          space=_tiny_space(), resolution=32, num_classes=5, depths=(2, 2), seed=0)


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.arange(n) % 5


def _step(model, x, y, lr=0.1):
    from mmengine.optim import OptimWrapper
    ow = OptimWrapper(torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    return model.train_step({'inputs': x, 'label': y}, ow)


def test_stage_inputs_are_the_teachers_maps_and_the_teacher_gets_no_gradient(teachers):
    model = _model(dict(checkpoint=str(teachers['cream'])))
    st, sn = model.strategy, model.supernet
    assert st.teacher.taps == ['blocks.0', 'blocks.1', 'blocks.2']      # a Cream teacher: its own stage outputs
    assert all(isinstance(b, torch.nn.Identity) for b in [*st.bridges.inp, *st.bridges.out])   # same widths
    before = {k: v.clone() for k, v in st.teacher.state_dict().items()}
    x, y = _batch()
    maps = st.teacher(x)
    caught = {}
    for s in range(2):
        for op in sn.blocks[s + 1][0]:
            op.register_forward_pre_hook(lambda m, a, s=s: caught.setdefault(s, a[0]))
    log = _step(model, x, y)
    assert set(log) >= {'loss', 'loss_stage1', 'loss_stage2'} and float(log['loss']) > 0
    for s in range(2):
        assert torch.equal(caught[s], maps[s]) and not caught[s].requires_grad
    for k, v in st.teacher.state_dict().items():                        # weights and BN statistics untouched
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None and not p.requires_grad for p in st.teacher.parameters())
    st.teacher.train()
    assert not any(m.training for m in st.teacher.modules())             # stays in eval mode
    # stages train independently: stage 2's loss sends no gradient into stage 1
    model.zero_grad(set_to_none=True)
    losses = model((x, maps), (st.sample(x.device), [2, 2], [0, 1]), mode='strategy')
    losses[1].backward()
    assert all(p.grad is None or not p.grad.any() for p in sn.blocks[1].parameters())
    assert any(p.grad is not None and p.grad.any() for p in sn.blocks[2].parameters())


def test_bridges_and_student_stem_train_when_the_teacher_differs(teachers):
    model = _model(dict(timm='mobilenetv3_small_050', checkpoint=str(teachers['mnv3']), kwargs=dict(num_classes=5)))
    st, sn = model.strategy, model.supernet
    assert st.teacher.taps == [None, 'blocks.0', 'blocks.1']             # no stride-2 map: the student's stem
    assert isinstance(st.bridges.inp[0], torch.nn.Identity)
    assert isinstance(st.bridges.out[0], torch.nn.Sequential)            # 16 -> 8 channels
    keys = [k for k in model.state_dict() if k.startswith('strategy_modules.dna.')]
    assert keys                                                          # saved with the model
    watched = {'bridge': st.bridges.out[1][0].weight, 'stem': sn.conv_stem.weight}
    before = {k: v.detach().clone() for k, v in watched.items()}
    x, y = _batch()
    _step(model, x, y)
    for k, p in watched.items():
        assert not torch.equal(p.detach(), before[k]), f'{k} was not trained'
    # 'always' projects even where widths agree; the inputs are bridged only where they differ
    m2 = _model(dict(checkpoint=str(teachers['cream'])), project='always', stage0_input='student_stem')
    assert all(isinstance(b, torch.nn.Sequential) for b in m2.strategy.bridges.out)
    assert m2.strategy.teacher.taps[0] is None


def test_scoring_restores_bn_and_arch_scores_sum_stage_losses(teachers):
    from cream_det.search.dna import stage_candidates
    from cream_det.search.ranking_tool import dna_path_scores
    model = _model(dict(checkpoint=str(teachers['cream'])))
    x, y = _batch(16)
    _step(model, x, y)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    val = [_batch(8, seed=1), _batch(8, seed=2)]
    st, sn = model.strategy, model.supernet
    cands = [stage_candidates(3, 2)] * 2
    losses = st.score_stages(sn, val, cands)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k                             # running statistics restored
    codes = np.array([[0, 1, -1, 2, 2, -1], [2, 2, -1, 0, 0, -1]])
    got = dna_path_scores(model, codes, val)
    want = [losses[0][cands[0].index((0, 1))] + losses[1][cands[1].index((2, 2))],
            losses[0][cands[0].index((2, 2))] + losses[1][cands[1].index((0, 0))]]
    assert got == pytest.approx(want)


def test_bad_teachers_are_one_clear_error(teachers, tmp_path):
    from cream_det.search.teacher import build_teacher
    # a ResNet has one stride-16 map; the Cream space ends stages 3 and 4 at stride 16
    with pytest.raises(ConfigError, match=r'1 feature map\(s\) at stride 16 .* stages 3, 4 .* each needs its own'):
        build_teacher(dict(timm='resnet10t', checkpoint=str(teachers['resnet']), kwargs=dict(num_classes=5)),
                      CREAM_SPACE, 64)
    # a teacher of the toy space (strides 4, 8) has nothing at stride 16 for the Cream space
    with pytest.raises(ConfigError, match='no feature map at stride 16'):
        build_teacher(dict(checkpoint=str(teachers['cream'])), CREAM_SPACE, 64)
    with pytest.raises(ConfigError, match=r"teacher.modules\[2\]='blocks.1' gives a 8x8 map \(stride 4\) but stage 2"):
        _model(dict(checkpoint=str(teachers['cream']), modules=['blocks.0', 'blocks.1', 'blocks.1']))
    with pytest.raises(CheckpointError, match='teacher checkpoint not found; run make-teacher.sh'):
        _model(dict(checkpoint=str(tmp_path / 'nope.pth'), how_to_make='run make-teacher.sh'))
    with pytest.raises(ConfigError, match='unknown key'):
        _model(dict(checkpoint=str(teachers['cream']), arhc='cream_14'))


# ---- the search tool end to end: outputs, resume, two processes ----------------------------------
def _teacher_opt(teachers):
    return f'model.strategy.teacher.checkpoint={teachers["cream"]}'


def test_dna_search_tool_exports_an_arch_retrain_and_detection_accept(teachers, tmp_path):
    from test_search import _search
    lo, hi = 600_000, 680_000                   # binds: the unconstrained best of this toy is dearer
    r = _search([str(TOY_DNA), '--work-dir', str(tmp_path), '--cfg-options', _teacher_opt(teachers),
                 f'model.macs_range=({lo},{hi})'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'DNA: best combination' in r.stdout + r.stderr and 'loss_stage2' in r.stdout + r.stderr
    arch = Arch.load(tmp_path / 'arch.json')
    assert (arch.space.name, arch.resolution, arch.num_classes) == ('tiny_test_search', 32, 5)
    assert set(arch.depths) <= {1, 2}                                   # cells of depth 1 and 2 compete
    assert lo <= arch.macs <= hi
    scores = json.loads((tmp_path / 'dna_scores.json').read_text())
    assert scores['rating'] == 'relative_l1'
    assert [len(s['candidates']) for s in scores['stages']] == [3 + 9, 3 + 9]
    assert [s['chosen_depth'] for s in scores['stages']] == list(arch.depths)
    assert {c['depth'] for c in scores['stages'][0]['candidates']} == {1, 2}
    combos = [(sum(c['loss'] for c in combo), [c['ops'] for c in combo])
              for combo in itertools.product(*[s['candidates'] for s in scores['stages']])
              if lo <= scores['fixed_macs'] + sum(c['macs'] for c in combo) <= hi]
    assert min(combos)[1] == [[o.name for o in st] for st in arch.stages]        # the exact optimum in range
    summary = json.loads((tmp_path / 'search_summary.json').read_text())
    assert summary['strategy'] == 'DNA' and summary['final_pick'] == 'dna'
    assert summary['dna']['candidates_scored'] == 24 and summary['dna']['depths'] == list(arch.depths)

    # retraining takes the file as it is
    from cream_det.engine.retrain import apply_arch, config_arch
    cfg = load_config(ROOT / 'configs/retrain/demo_digits.py')
    apply_arch(cfg, str(tmp_path / 'arch.json'))
    assert config_arch(cfg).stages == arch.stages
    # detection: the backbone builds from the file and loads the weights the supernet exports for it
    from cream_det.det.backbone import CreamBackbone
    sd = torch.load(tmp_path / 'epoch_4.pth', map_location='cpu', weights_only=False)['state_dict']
    sn = Supernet(arch.space, (2, 2), 5, resolution=32)
    sn.load_state_dict({k[len('supernet.'):]: v for k, v in sd.items() if k.startswith('supernet.')})
    ckpt = save_subnet_checkpoint(tmp_path / 'subnet.pth', sn.subnet_state_dict(arch), arch)
    bb = CreamBackbone(arch=str(tmp_path / 'arch.json'), out_indices=(1, 2),
                       init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    bb.init_weights()
    assert torch.equal(bb.net.blocks[1][0].conv_pw.weight, sn.blocks[1][0][arch.choice_indices()[0][0]].conv_pw.weight)
    assert [f.shape[1] for f in bb(torch.zeros(1, 3, 32, 32))] == list(bb.out_channels)


def test_dna_search_under_a_latency_range_picks_the_best_combination_inside_it(teachers, tmp_path):
    """DNA end to end with a table measured at run time: the knapsack's second limit holds on the arch the
    tool writes, and that arch is the lowest-loss combination of the scored cells inside both ranges."""
    from cream_det.engine.search_run import run_search
    from cream_det.models.latency import LatencyTable
    from cream_det.space import Op
    cfg = load_config(TOY_DNA, {'model.strategy.teacher.checkpoint': str(teachers['cream']),
                                'model.latency_table': dict(measure=True, warmup=2, repeats=5),
                                'model.latency_range': ('0%', '40%')}, str(tmp_path))
    _, summary = run_search(cfg)
    table = LatencyTable.load(tmp_path / 'latency_table.json')
    lo, hi = summary['latency_range']
    arch = Arch.load(tmp_path / 'arch.json')
    record = json.loads((tmp_path / 'arch.json').read_text())['latency']
    assert record.pop('measured') == 'plain' and record.pop('measured_ms') > 0 and record.pop('measured_repeats') == 5
    assert record == table.arch_record(arch) and lo <= record['predicted_ms'] <= hi
    scores = json.loads((tmp_path / 'dna_scores.json').read_text())
    macs_lo, macs_hi = cfg.model.macs_range
    inside, everywhere = [], []
    for combo in itertools.product(*[s['candidates'] for s in scores['stages']]):
        a = Arch(tuple(tuple(Op.parse(o) for o in c['ops']) for c in combo), arch.resolution, arch.num_classes,
                 arch.space)
        loss = sum(c['loss'] for c in combo)
        everywhere.append((loss, a.stages))
        if macs_lo <= a.macs <= macs_hi and lo <= table.predict(a) <= hi:
            inside.append((loss, a.stages))
    assert min(inside)[1] == arch.stages
    assert len(inside) < len(everywhere)                # the latency range left combinations out


def test_dna_missing_teacher_is_one_clear_error(tmp_path):
    from test_search import _search
    r = _search([str(ROOT / 'configs/search/dna_demo.py'), '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                 f'model.strategy.teacher.checkpoint={tmp_path / "none.pth"}'])
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert 'DNA teacher checkpoint not found' in r.stderr
    assert 'tools/retrain.py configs/retrain/demo_digits.py' in r.stderr            # the command that makes it


def test_dna_resume_after_sigkill_matches_uninterrupted_run(teachers, tmp_path):
    from test_search import _kill_and_resume
    opts = ['--cfg-options', 'train_cfg.max_epochs=8', 'param_scheduler.0.end=48', _teacher_opt(teachers)]
    ref, killed = _kill_and_resume(TOY_DNA, tmp_path, opts)
    assert Arch.load(ref / 'arch.json') == Arch.load(killed / 'arch.json')
    a, b = (json.loads((d / 'dna_scores.json').read_text()) for d in (ref, killed))
    assert a['stages'] == b['stages']                    # every candidate's held-out loss, bit for bit
    ka, kb = (torch.load(d / 'epoch_8.pth', map_location='cpu', weights_only=False) for d in (ref, killed))
    assert ka['search_state']['history'] == kb['search_state']['history']
    for k, v in ka['state_dict'].items():                # supernet and bridges
        assert torch.equal(v, kb['state_dict'][k]), k


@pytest.mark.dist
@pytest.mark.parametrize('schedule', ['concurrent', 'blockwise'])
def test_dna_two_processes_train_the_same_paths(teachers, tmp_path, schedule):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    opts = json.dumps({'model.strategy.teacher.checkpoint': str(teachers['cream']),
                       'model.strategy.schedule': schedule, 'model.strategy.stage_epochs': [2, 2]})
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29637',
                        str(ROOT / 'tests/scripts/dist_search_check.py'), str(TOY_DNA), str(tmp_path), opts],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (json.loads((tmp_path / f'search_rank{i}.json').read_text()) for i in range(2))
    assert a['world'] == 2 and len(a['history']) == 12        # 96 images / (2 x 16) per step, 4 epochs
    assert a['params'] == b['params'] and a['history'] == b['history']
    assert set(Arch.load(tmp_path / 'arch.json').depths) <= {1, 2} and (tmp_path / 'dna_scores.json').is_file()


# ---- the authors' rating, depth cells, block-wise schedule, per-stage clipping --------------------------
def test_relative_l1_rating_matches_a_hand_computation(teachers):
    from cream_det.search.dna import relative_l1, run_stage
    out = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, -1.0], [2.0, 2.0]]]])
    target = torch.tensor([[[[1.5, 2.0], [2.0, 5.0]]], [[[1.0, -1.0], [2.0, 0.0]]]])
    # |d| = .5 0 1 1 1 0 0 2 -> mean 5.5/8; target mean 12.5/8, unbiased std over all 8 elements
    t = [1.5, 2.0, 2.0, 5.0, 1.0, -1.0, 2.0, 0.0]
    mean = sum(t) / 8
    std = (sum((v - mean) ** 2 for v in t) / 7) ** 0.5
    assert float(relative_l1(out, target)) == pytest.approx((5.5 / 8) / std, rel=1e-6)
    # the final search rates every cell by it: image-weighted mean over the held-out batches
    model = _model(dict(checkpoint=str(teachers['cream'])))
    st, sn = model.strategy, model.supernet
    assert st.rating == 'relative_l1'
    val = [_batch(8, seed=1), _batch(4, seed=2)]
    cands = [[(0,), (1, 2)], [(2, 0)]]
    got = st.score_stages(sn, val, cands)
    want = [[0.0, 0.0], [0.0]]
    sn.train()
    with torch.no_grad():
        for x, _ in val:
            maps = st.teacher(x)
            for s, cs in enumerate(cands):
                for i, ops in enumerate(cs):
                    o, tg = run_stage(sn, st.bridges, s, ops, maps, x), maps[s + 1]
                    r = (o - tg).abs().sum() / o.numel() / torch.sqrt(((tg - tg.mean()) ** 2).sum() / (tg.numel() - 1))
                    want[s][i] += float(r) * x.shape[0] / 12
    for g, w in zip(got, want):
        assert g == pytest.approx(w, rel=1e-5)
    mse = _model(dict(checkpoint=str(teachers['cream'])), rating='mse')
    mse.load_state_dict(model.state_dict())
    got_mse = mse.strategy.score_stages(mse.supernet, val, cands)
    assert not np.allclose(got_mse[0], got[0])                      # the option really rates by MSE
    with pytest.raises(ConfigError, match="rating='l2'"):
        _model(dict(checkpoint=str(teachers['cream'])), rating='l2')


def test_depth_cells_are_enumerated_with_exact_macs(teachers):
    from cream_det.search.dna import stage_macs
    from cream_det.space import cost_table
    model = _model(dict(checkpoint=str(teachers['cream'])))            # supernet depths (2, 2), space 1..3
    st, sn = model.strategy, model.supernet
    assert st.cell_depths == [[1, 2], [1, 2]]                          # 'all': min_depth .. supernet depth
    cands = st.candidates()
    assert [len(c) for c in cands] == [3 + 9, 3 + 9]
    assert set(cands[0]) == {(a,) for a in range(3)} | set(itertools.product(range(3), repeat=2))
    macs = [stage_macs(sn, s, c) for s, c in enumerate(cands)]
    fixed = cost_table(sn.space, 32, 5).fixed_macs
    for i, a in enumerate(cands[0]):                                   # every combination, measured as an Arch
        for j, b in enumerate(cands[1]):
            arch = Arch((tuple(sn.space.ops[k] for k in a), tuple(sn.space.ops[k] for k in b)), 32, 5, sn.space)
            assert arch.macs == fixed + macs[0][i] + macs[1][j]
    assert len(set(macs[0][:3])) == 3 and macs[0][3:].min() > macs[0][:3].min()
    one = _model(dict(checkpoint=str(teachers['cream'])), cell_depths=[[2], [1, 2]])
    assert [len(c) for c in one.strategy.candidates()] == [9, 12]
    with pytest.raises(ConfigError, match=r'stage 1 asks for depths \[1, 2, 3\].* 1..2 layers'):
        _model(dict(checkpoint=str(teachers['cream'])), cell_depths=[1, 2, 3])


@pytest.mark.parametrize('seed', range(12))
def test_combination_search_is_exact_with_depth_choices(teachers, seed):
    from cream_det.search.dna import stage_candidates, stage_macs
    from cream_det.space import cost_table
    model = _model(dict(checkpoint=str(teachers['cream'])))
    sn = model.supernet
    cands = [stage_candidates(3, [1, 2]), stage_candidates(3, [1, 2])]
    macs = [stage_macs(sn, s, c) for s, c in enumerate(cands)]
    rng = np.random.default_rng(seed)
    losses = [rng.random(len(c)) + (0.0 if seed % 2 else 2.0 / np.array([len(x) for x in c])) for c in cands]
    fixed = int(cost_table(sn.space, 32, 5).fixed_macs)
    lo_t, hi_t = fixed + sum(int(m.min()) for m in macs), fixed + sum(int(m.max()) for m in macs)
    a, b = sorted(rng.integers(lo_t, hi_t + 1, size=2))
    want = _brute(macs, losses, a, b, fixed)
    if want is None:
        with pytest.raises(SpaceError):
            best_combination(macs, losses, (a, b), fixed)
        return
    got = best_combination(macs, losses, (a, b), fixed)
    assert got.loss == pytest.approx(want[0]) and a <= got.macs <= b
    arch = Arch(tuple(tuple(sn.space.ops[k] for k in cands[s][c]) for s, c in enumerate(got.choice)), 32, 5, sn.space)
    assert arch.macs == got.macs


def test_bound_is_the_larger_of_its_two_relaxations():
    from cream_det.search.combination import _suffix_fronts, suffix_bound
    rng = np.random.default_rng(0)
    larger_up = larger_down = 0
    for _ in range(200):
        macs = [rng.integers(0, 30, size=int(rng.integers(1, 5))) for _ in range(3)]
        loss = [rng.random(len(m)) for m in macs]
        ok = [np.ones(len(m), bool) for m in macs]
        up = _suffix_fronts(macs, loss, ok, limit=lambda k, t: np.ones(len(t), bool), ascending=True)
        down = _suffix_fronts(macs, loss, ok, limit=lambda k, t: np.ones(len(t), bool), ascending=False)
        need_lo, need_hi = sorted(rng.integers(0, 90, size=2))
        totals = [(sum(int(m[c]) for m, c in zip(macs, ch)), sum(float(v[c]) for v, c in zip(loss, ch)))
                  for ch in itertools.product(*[range(len(m)) for m in macs])]
        a = min([v for t, v in totals if t <= need_hi], default=np.inf)
        b = min([v for t, v in totals if t >= need_lo], default=np.inf)
        assert suffix_bound(up[0], down[0], need_lo, need_hi) == pytest.approx(max(a, b))
        larger_up += a > b
        larger_down += b > a
    assert larger_up and larger_down                 # both relaxations bind in some cases


def _params(mod):
    return {k: v.detach().clone() for k, v in mod.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_blockwise_schedule_trains_only_the_current_stage(teachers, tmp_path):
    from mmengine.logging import MessageHub
    model = _model(dict(checkpoint=str(teachers['cream'])), schedule='blockwise', stage_epochs=(2, 1),
                   stage_lr=(0.01, 0.02))
    st, sn = model.strategy, model.supernet
    assert st.stage_optimizer['type'] == 'Adam'
    hub = MessageHub.get_current_instance()
    parts = {'stem': sn.blocks[0], 'stage1': sn.blocks[1], 'stage2': sn.blocks[2], 'head': sn.conv_head}
    try:
        for epoch, trained, lr in ((0, 'stage1', 0.01), (1, 'stage1', 0.009), (2, 'stage2', 0.02)):
            hub.update_info('epoch', epoch)
            before = {k: _params(m) for k, m in parts.items()}
            for seed in range(2):
                x, y = _batch(seed=seed)
                log = _step(model, x, y)
            assert float(log['stage_lr']) == pytest.approx(lr)             # per-stage lr, x0.9 each epoch
            assert float(log['stage']) == int(trained[-1]) and not any(k.startswith('loss_stage') for k in log)
            for k in parts:
                assert _same(before[k], _params(parts[k])) == (k != trained), (epoch, k)
            assert isinstance(st._opt, torch.optim.Adam) and st._opt_stage == int(trained[-1]) - 1
            assert {id(p) for g in st._opt.param_groups for p in g['params']} == \
                {id(p) for p in sn.blocks[int(trained[-1])].parameters()}
        hub.update_info('epoch', 3)
        with pytest.raises(ConfigError, match='set train_cfg.max_epochs=3'):
            _step(model, *_batch())
        # a loop shorter than the stages' epochs is caught before rating: stage 2 never trained
        short = _model(dict(checkpoint=str(teachers['cream'])), schedule='blockwise', stage_epochs=(1, 1))
        hub.update_info('epoch', 0)
        _step(short, *_batch())
        with pytest.raises(ConfigError, match=r'stage\(s\) \[2\] never trained .*max_epochs=2'):
            short.strategy.final_search(short.supernet, [_batch()], tmp_path)
        bad = _model(dict(checkpoint=str(teachers['cream'])), schedule='blockwise',
                     stage_optimizer=dict(type='Adam', momentum=0.9))
        with pytest.raises(ConfigError, match="stage_optimizer=.*momentum"):
            _step(bad, *_batch())
    finally:
        hub.update_info('epoch', 0)


def test_per_stage_clipping_bounds_each_stage_on_its_own(teachers):
    from mmengine.optim import OptimWrapper
    model = _model(dict(checkpoint=str(teachers['cream'])), clip_grad=1e-3)
    sn = model.supernet
    before = [_params(sn.blocks[s]) for s in (1, 2)]
    x, y = _batch()
    model.train_step({'inputs': x, 'label': y}, OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0)))
    for s, b in zip((1, 2), before):
        after = dict(sn.blocks[s].named_parameters())
        step = torch.sqrt(sum(((after[k].detach() - b[k]) ** 2).sum() for k in after))
        assert float(step) == pytest.approx(1e-3, rel=1e-3)           # each stage clipped to its own norm
    ow = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), clip_grad=dict(max_norm=5.0))
    with pytest.raises(ConfigError, match='couples'):
        model.train_step({'inputs': x, 'label': y}, ow)


def test_dna_blockwise_resume_after_sigkill_matches_uninterrupted_run(teachers, tmp_path):
    from test_search import _kill_and_resume
    opts = ['--cfg-options', 'train_cfg.max_epochs=8', 'param_scheduler.0.end=48', _teacher_opt(teachers),
            "model.strategy.schedule='blockwise'", 'model.strategy.stage_epochs=[2,6]']
    ref, killed = _kill_and_resume(TOY_DNA, tmp_path, opts)      # killed in epoch 4: stage 2, its Adam mid-way
    assert Arch.load(ref / 'arch.json') == Arch.load(killed / 'arch.json')
    ka, kb = (torch.load(d / 'epoch_8.pth', map_location='cpu', weights_only=False) for d in (ref, killed))
    assert ka['search_state']['history'] == kb['search_state']['history']
    assert ka['search_state']['stage_optimizer']['stage'] == 1
    for k, v in ka['state_dict'].items():
        assert torch.equal(v, kb['state_dict'][k]), k
    a, b = (json.loads((d / 'dna_scores.json').read_text()) for d in (ref, killed))
    assert a['stages'] == b['stages'] and a['rating'] == 'relative_l1'
