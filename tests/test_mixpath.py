"""MixPath: multi-path archs (file, codes, costs, sampler), shadow BN, the supernet and its export,
single-path-only consumers refusing multi-path archs, and the search -> retrain -> detection path.

The search-engine tests shared with Cream (SIGKILL resume, 2 processes) are parametrized in
tests/test_search.py.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cream_det  # noqa: F401
from cream_det.errors import ArchError, ConfigError, SpaceError
from cream_det.models import build_subnet
from cream_det.models.mixed_op import MixedOpBlock, ShadowBatchNorm
from cream_det.models.mixpath_supernet import MixPathSupernet
from cream_det.models.supernet import Supernet
from cream_det.space import CREAM_SPACE, Arch, ArchSampler, Op, SearchSpace, StageSpec, cost_table, get_arch
from cream_det.space.arch import FORMAT, FORMAT_MULTIPATH

from bn_stats import randomize_bn_stats

ROOT = Path(__file__).resolve().parents[1]
DEPTHS = (2, 2, 2, 2, 2)
K3E4, K3E6, K5E4, K5E6, K7E4, K7E6 = CREAM_SPACE.ops

pytestmark = pytest.mark.usefixtures('one_thread')


def _multi(**kw) -> Arch:
    """A multi-path arch of the Cream space with 1-, 2- and 3-op layers, in every stage."""
    stages = ((K3E4, (K3E4, K5E6)), ((K5E4, K7E6), K3E6), (K7E4, (K3E4, K3E6, K7E6)), ((K3E6, K5E4), K7E6),
              ((K5E6, K7E4), (K3E4, K5E4, K7E6)))
    return Arch(stages, **{'resolution': 64, 'num_classes': 10, **kw})


# ---- the arch type and its file ---------------------------------------------------------------------
def test_multipath_layers_are_canonical_and_validated():
    a = Arch(((K3E4, ('k5e6', 'k3e4')),) + _multi().stages[1:], 64, 10)
    assert a.stages[0][1] == (K3E4, K5E6)                 # choice order, whatever the input order
    assert a == _multi() and a.hash == _multi().hash
    assert a.is_multipath and a.max_paths == 3 and not get_arch('cream_14').is_multipath
    single = Arch(((['k3e4'],),) + get_arch('cream_14').stages[1:], 64)
    assert single.stages == get_arch('cream_14').stages   # a one-op list is the op itself
    assert str(a).startswith(f'{a.hash}@64: k3e4 k3e4+k5e6 |')
    with pytest.raises(ArchError, match=r'stages\[0\]\[1\]: op k3e4 listed twice'):
        Arch(((K3E4, (K3E4, K3E4)),) + _multi().stages[1:])
    with pytest.raises(ArchError, match=r'stages\[0\]\[1\]: an empty multi-path layer'):
        Arch(((K3E4, ()),) + _multi().stages[1:])
    with pytest.raises(ArchError, match=r'stages\[0\]\[1\]\[1\]: op k9e6 is not in'):
        Arch(((K3E4, ('k3e4', 'k9e6')),) + _multi().stages[1:])


@pytest.mark.parametrize('suffix', ['.json', '.yaml'])
def test_multipath_file_roundtrip_and_cost_check(tmp_path, suffix):
    a = _multi(name='mp')
    p = a.save(tmp_path / f'a{suffix}')
    b = Arch.load(p)
    assert b == a and b.name == 'mp' and b.to_dict() == a.to_dict()
    d = a.to_dict()
    assert d['format'] == FORMAT_MULTIPATH
    assert d['stages'][0] == ['k3e4', ['k3e4', 'k5e6']] and d['stages'][2][1] == ['k3e4', 'k3e6', 'k7e6']
    if suffix == '.json':
        assert '    ["k3e4", ["k3e4", "k5e6"]],\n' in p.read_text()        # one line per stage
    d['stages'][0][1] = ['k3e4', 'k7e6']                                    # edited, costs left stale
    with pytest.raises(ArchError, match='macs: the file records'):
        Arch.from_dict(d)
    d['format'] = 'cream_det.arch/3'
    with pytest.raises(ArchError, match="format: 'cream_det.arch/3' is not"):
        Arch.from_dict(d)


def test_single_path_files_are_written_exactly_as_before(tmp_path):
    for name in ('cream_14', 'cream_481'):
        shipped = ROOT / 'cream_det/space/archs' / f'{name}.json'
        again = Arch.load(shipped).save(tmp_path / f'{name}.json')
        assert again.read_bytes() == shipped.read_bytes()
        assert json.loads(again.read_text())['format'] == FORMAT


def test_mask_codes_roundtrip_and_single_path_codes_refuse_multipath():
    a = _multi()
    code = a.encode_mask()
    assert code.dtype == np.int32 and code.shape == (CREAM_SPACE.max_layers,)
    assert code[0] == 1 << 0 and code[1] == (1 << 0) | (1 << 3) and (code[2:6] == 0).all()
    assert Arch.decode_mask(code, CREAM_SPACE, 64, 10) == a
    c14 = get_arch('cream_14')
    assert Arch.decode_mask(c14.encode_mask(), CREAM_SPACE, 64) == c14
    assert (c14.encode_mask() == np.where(c14.encode() >= 0, 1 << c14.encode().clip(0).astype(np.int32), 0)).all()
    for call in (a.encode, a.choice_indices, a.block_strings):
        with pytest.raises(ArchError, match=r'is a multi-path \(MixPath\) arch'):
            call()


# ---- costs --------------------------------------------------------------------------------------------
def test_multipath_cost_is_branches_plus_one_bn():
    """The analytic rule (the profiler cross-check is in test_flops.py)."""
    t = cost_table(CREAM_SPACE, 64, 10)
    slot = 1                                        # stage 1, layer 2 of _multi(): k3e4 + k5e6
    assert t.masks().macs[slot, 0b1001] == t.macs[slot, 0] + t.macs[slot, 3] - t.bn_macs[slot]
    assert t.masks().params[slot, 0b1001] == t.params[slot, 0] + t.params[slot, 3] - t.bn_params[slot]
    # a one-bit mask costs exactly the single-path op; the absent layer nothing
    assert (t.masks().macs[:, [1 << j for j in range(6)]] == t.macs[:, :6]).all()
    assert (t.masks().params[:, [1 << j for j in range(6)]] == t.params[:, :6]).all()
    assert (t.masks().macs[:, 0] == 0).all()
    a = _multi()
    skel = a.skeleton()
    assert not skel.is_multipath and skel.depths == a.depths and a.macs > skel.macs


def test_mask_table_bounds_are_attained():
    t = cost_table(CREAM_SPACE, 64, 10)
    assert t.masks(1).bounds(DEPTHS) == t.bounds(DEPTHS)
    lo, hi = t.masks(2).bounds(DEPTHS)
    s = ArchSampler(CREAM_SPACE, 64, 10, depths=DEPTHS, max_paths=2, seed=0)
    macs = s.table.macs_of(s.sample_codes(20000))
    assert lo <= macs.min() and macs.max() <= hi
    biggest = Arch(tuple((K7E6,) + ((K5E6, K7E6),) for _ in range(5)), 64, 10)
    assert biggest.macs <= hi
    with pytest.raises(SpaceError, match='and up to 2 ops per layer have between'):
        ArchSampler(CREAM_SPACE, 64, 10, depths=DEPTHS, max_paths=2, macs_range=(hi + 1, hi + 2))


# ---- sampler -----------------------------------------------------------------------------------------
def test_sampler_draws_one_to_m_distinct_ops_uniformly():
    m = 3
    s = ArchSampler(CREAM_SPACE, 64, 10, depths=(1, 2, 3, 4, 2), max_paths=m, seed=0)
    codes = s.sample_codes(6000)
    per_stage = codes.reshape(-1, 5, 6)
    assert ((per_stage > 0).sum(-1) == [1, 2, 3, 4, 2]).all()                 # the supernet's depths
    masks = codes[codes > 0]
    width = np.array([bin(int(c)).count('1') for c in masks])
    assert width.min() == 1 and width.max() == m
    assert np.allclose(np.bincount(width)[1:] / len(width), 1 / m, atol=0.02)    # k ~ U{1..m}
    two = masks[width == 2]
    assert len(np.unique(two)) == 15 and np.bincount(two).max() / len(two) < 1 / 15 + 0.02   # uniform pairs
    assert np.array_equal(codes, ArchSampler(CREAM_SPACE, 64, 10, depths=(1, 2, 3, 4, 2), max_paths=m,
                                             seed=0).sample_codes(6000))
    a = s.sample()
    assert a.depths == (1, 2, 3, 4, 2) and a.max_paths <= m
    only = ArchSampler(CREAM_SPACE, max_paths=2, op_probs=[1, 0, 0, 1, 0, 0], seed=0).sample_codes(200)
    assert set(np.unique(only)) <= {0, 0b1, 0b1000, 0b1001}


@pytest.mark.parametrize('bad, match', [(7, r'max_paths=7 is larger than the 6 ops of search space cream_mbv3'),
                                        (0, r'max_paths=0: .* integer >= 1')])
def test_max_paths_out_of_range_is_one_clear_error(bad, match):
    with pytest.raises(SpaceError, match=match):
        ArchSampler(CREAM_SPACE, max_paths=bad)
    with pytest.raises(SpaceError, match=match):
        MixPathSupernet(CREAM_SPACE, (1, 1, 1, 1, 1), 10, max_paths=bad, resolution=64)
    with pytest.raises(SpaceError, match='only 1 ops a non-zero probability'):
        ArchSampler(CREAM_SPACE, max_paths=2, op_probs=[1, 0, 0, 0, 0, 0])


# ---- shadow BN and the multi-path block ------------------------------------------------------------
def test_shadow_bn_uses_the_bn_of_the_active_path_count_and_keeps_separate_statistics():
    torch.manual_seed(0)
    sbn = ShadowBatchNorm(torch.nn.BatchNorm2d(4), 3).train()
    before = [(b.running_mean.clone(), b.running_var.clone()) for b in sbn.bns]
    x = torch.randn(8, 4, 5, 5) * 2 + 1
    with torch.no_grad():
        sbn.bns[1].weight.uniform_(0.5, 2)
        ref = torch.nn.functional.batch_norm(x, None, None, sbn.bns[1].weight, sbn.bns[1].bias, training=True)
        out = sbn(x, 2)
    torch.testing.assert_close(out, ref)
    moved = [not torch.equal(b.running_mean, m) or not torch.equal(b.running_var, v)
             for b, (m, v) in zip(sbn.bns, before)]
    assert moved == [False, True, False]                        # only the k=2 BN learned statistics
    torch.testing.assert_close(sbn.bns[1].running_mean, 0.1 * x.mean((0, 2, 3)))
    with torch.no_grad():
        sbn(3 * x, 3)
    assert not torch.allclose(sbn.bns[2].running_var, sbn.bns[1].running_var)
    sbn.eval()
    with torch.no_grad():
        for k in (1, 2, 3):
            b = sbn.bns[k - 1]
            torch.testing.assert_close(sbn(x, k), torch.nn.functional.batch_norm(
                x, b.running_mean, b.running_var, b.weight, b.bias, training=False))


TINY = SearchSpace('tiny_mixpath', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 1, Op(3, 2), 2)),
                   (Op(3, 2), Op(5, 2), Op(3, 4)), stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
                   last_channels=16, head_channels=16)


def test_the_path_codes_choose_the_supernet():
    """The strategy's codes decide the supernet: SupernetSearch builds the MixPath supernet for MixPath's op-set
    masks and the single-path one otherwise, and each supernet's own codes name its class back."""
    from cream_det.engine.supernet_search import SupernetSearch
    from cream_det.models.supernet_kinds import supernet_class
    from cream_det.space import PathCodes
    assert supernet_class(PathCodes(TINY)) is Supernet and supernet_class(PathCodes(TINY, 2)) is MixPathSupernet
    lo, hi = cost_table(TINY, 32, 5).masks(2).bounds((2, 2))
    for strategy, cls in ((dict(type='mixpath', max_paths=2), MixPathSupernet), (dict(type='spos'), Supernet)):
        model = SupernetSearch(strategy, (lo, hi), TINY, resolution=32, num_classes=5, depths=(2, 2))
        assert type(model.supernet) is cls and supernet_class(model.supernet.codes) is cls


@pytest.fixture(scope='module')
def tiny_net() -> MixPathSupernet:
    torch.manual_seed(0)
    net = MixPathSupernet(TINY, (2, 2), num_classes=5, max_paths=3, resolution=32)
    randomize_bn_stats(net, biases=True)
    return net.eval()


def test_summed_output_is_the_sum_of_single_path_outputs_before_bn(tiny_net):
    layer: MixedOpBlock = tiny_net.blocks[1][1]                   # stride 1, 8 -> 8: has a skip
    assert layer.has_skip and layer.shadow and len(layer.branches) == 3 and layer.bn.max_paths == 3
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        singles = [layer.branch_sum(x, (j,)) for j in range(3)]
        torch.testing.assert_close(layer.branch_sum(x, (0, 2)), singles[0] + singles[2], rtol=0, atol=0)
        torch.testing.assert_close(layer.branch_sum(x, (0, 1, 2)), singles[0] + singles[1] + singles[2],
                                   rtol=0, atol=0)
        # then the shadow BN of k, then the residual once
        torch.testing.assert_close(layer(x, (0, 2)), layer.bn.bns[1](singles[0] + singles[2]) + x, rtol=0, atol=0)
        torch.testing.assert_close(layer(x, (1,)), layer.bn.bns[0](singles[1]) + x, rtol=0, atol=0)
    # a branch is timm's block without its final BN and skip: the branch's own BNs stay inside
    assert isinstance(layer.branches[0].bn3, torch.nn.Identity) and not layer.branches[0].has_skip
    assert layer.branches[0].bn1.num_features == 16 and layer.branches[2].bn1.num_features == 32


def test_only_the_path_gets_gradients(tiny_net):
    code = Arch(((Op(3, 2), (Op(3, 2), Op(5, 2))), ((Op(5, 2), Op(3, 4)), Op(3, 4))), 32, 5, TINY).encode_mask()
    tiny_net.zero_grad(set_to_none=True)
    tiny_net.train()
    try:
        tiny_net(torch.randn(2, 3, 32, 32), code).sum().backward()
    finally:
        tiny_net.eval()
    with_grad = {n for n, p in tiny_net.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, _ in tiny_net.named_path_parameters(code)}
    assert 'blocks.1.1.bn.bns.1.weight' in with_grad and 'blocks.1.1.bn.bns.0.weight' not in with_grad
    assert 'blocks.1.0.bn.bns.0.weight' in with_grad and 'blocks.1.1.branches.2.conv_pw.weight' not in with_grad
    tiny_net.zero_grad(set_to_none=True)


# ---- supernet -> subnet ----------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def cream_net() -> MixPathSupernet:
    torch.manual_seed(0)
    net = MixPathSupernet(CREAM_SPACE, DEPTHS, num_classes=10, max_paths=3, resolution=64)
    randomize_bn_stats(net, biases=True)
    return net.eval()


def _paths():
    codes = ArchSampler(CREAM_SPACE, 64, 10, depths=DEPTHS, max_paths=3, seed=1).sample_codes(2)
    return [codes[0], codes[1], _multi(), get_arch('cream_14').with_(num_classes=10)]


@pytest.mark.parametrize('k', range(4))
def test_inherited_subnet_gives_identical_logits(cream_net, k):
    arch = _paths()[k]
    a = cream_net.arch_of(arch)
    sub = cream_net.export_subnet(arch).eval()
    assert sub.cream_arch == a and set(cream_net.subnet_state_dict(arch)) == set(build_subnet(a).state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(cream_net(x, arch), sub(x), atol=1e-6, rtol=0)
    if a.is_multipath:
        assert any(isinstance(m, MixedOpBlock) and not m.shadow for m in sub.modules())
    assert sum(p.numel() for p in sub.parameters()) == a.params


def test_inherited_weights_load_into_the_detection_backbone(cream_net, tmp_path):
    from cream_det.det import CreamBackbone
    from cream_det.models.checkpoint import save_subnet_checkpoint
    a = _multi()
    ckpt = save_subnet_checkpoint(tmp_path / 'mp.pth', cream_net.subnet_state_dict(a), a)
    bb = CreamBackbone(init_cfg=dict(type='Pretrained', checkpoint=str(ckpt))).eval()     # arch from the file
    assert bb.arch == a and bb.out_channels == (24, 40, 96, 320)
    bb.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for ours, theirs in zip(cream_net.features(x, a), bb(x)):
            torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    bb.train()
    bb(torch.randn(2, 3, 64, 64))                                  # trains (BN in train mode) too
    synced = CreamBackbone(arch=a, sync_bn=True)
    assert 'BatchNormAct2d' not in {type(m).__name__ for m in synced.modules()}


def test_drop_path_and_features_only_build():
    a = _multi()
    net = build_subnet(a, drop_path_rate=0.2)
    rates = [getattr(b.drop_path, 'drop_prob', 0.0) for stage in net.blocks[1:-1] for b in stage]
    assert rates == sorted(rates) and rates[-1] > 0                # timm's per-block rates, kept
    feats = build_subnet(a, features_only=True, out_indices=(1, 2, 3, 4))
    assert [f['num_chs'] for f in feats.feature_info.get_dicts()] == [24, 40, 96, 320]


# ---- single-path-only consumers ---------------------------------------------------------------------------
MULTI = r'is a multi-path \(MixPath\) arch \(stage 1 layer 2 runs k3e4\+k5e6\); '


def test_single_path_consumers_refuse_a_multipath_arch(tmp_path, monkeypatch):
    a = _multi()
    sn = Supernet(CREAM_SPACE, DEPTHS, num_classes=10, resolution=64)
    with pytest.raises(ArchError, match=MULTI + r"the single-path supernet of .*type='mixpath'"):
        sn(torch.zeros(1, 3, 64, 64), a)
    from cream_det.models.convert import convert_official
    with pytest.raises(ArchError, match=MULTI + 'the official-checkpoint converter'):
        convert_official(tmp_path / 'x.pth', tmp_path / 'y.pth', a)
    p = a.save(tmp_path / 'mp.json')
    r = subprocess.run([sys.executable, str(ROOT / 'tools/convert_official.py'), str(tmp_path / 'x.pth'),
                        str(tmp_path / 'y.pth'), '--arch', str(p)], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1'))
    assert r.returncode != 0 and 'is a multi-path (MixPath) arch' in r.stderr and 'Traceback' not in r.stderr
    from cream_det.space import zoo
    monkeypatch.setattr(zoo, 'ARCH_DIR', tmp_path)
    a.save(tmp_path / 'cream_14.json')
    zoo.get_arch.cache_clear()
    try:
        with pytest.raises(ArchError, match=MULTI + 'the published zoo'):
            zoo.get_arch('cream_14')
    finally:
        zoo.get_arch.cache_clear()


# ---- end to end through the real tools ----------------------------------------------------------------------
@pytest.mark.slow
def test_search_tool_exports_a_multipath_arch_that_retrains_and_detects(tmp_path, imagenet_digits):
    """tools/search.py (mixpath + evolution) -> arch.json -> tools/retrain.py -> CreamBackbone, tools unchanged."""
    from test_search import MIXPATH, TOY, _cli, _search

    from cream_det.det import CreamBackbone
    from cream_det.models.checkpoint import embedded_arch, read_checkpoint
    search = tmp_path / 'search'
    r = _search([str(TOY), '--work-dir', str(search), '--cfg-options', *_cli(MIXPATH)])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'paths_per_layer' in r.stdout + r.stderr
    summary = json.loads((search / 'search_summary.json').read_text())
    assert summary['strategy'] == 'MixPath' and summary['final_pick'] == 'evolution'
    assert summary['evolution']['evaluated'] >= 8
    arch = Arch.load(search / 'arch.json')                 # re-measures MACs/params on load
    assert arch.is_multipath and arch.max_paths == 2 and arch.depths == (2, 2)
    assert 1.0e6 <= arch.macs <= 10e6 and json.loads((search / 'arch.json').read_text())['format'] == FORMAT_MULTIPATH

    retrain = tmp_path / 'retrain'
    opts = {f'{k}_dataloader.dataset.root': str(imagenet_digits) for k in ('train', 'val', 'test')}
    opts.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1, 'default_hooks.checkpoint.interval': 1})
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, str(ROOT / 'tools/retrain.py'), str(ROOT / 'configs/retrain/demo_digits.py'),
                        '--arch', str(search / 'arch.json'), '--work-dir', str(retrain), '--cfg-options', *_cli(opts)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    ckpt = retrain / 'epoch_1.pth'
    trained = embedded_arch(read_checkpoint(ckpt))
    assert trained.stages == arch.stages and (trained.resolution, trained.num_classes) == (32, 10)

    # the toy space has 3 feature levels (strides 2, 4, 8); the arch comes from the checkpoint
    bb = CreamBackbone(out_indices=(1, 2), init_cfg=dict(type='Pretrained', checkpoint=str(ckpt))).eval()
    bb.init_weights()
    sd = read_checkpoint(ckpt)['state_dict']
    name = next(k for k in sd if '.branches.1.' in k and k.endswith('conv_pw.weight'))
    assert torch.equal(dict(bb.net.named_parameters())[name[len('net.'):]], sd[name])
    with torch.no_grad():
        feats = bb(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(bb.out_channels)
    assert CreamBackbone(arch=str(search / 'arch.json'), out_indices=(1, 2)).arch == arch
    with pytest.raises(ConfigError, match=r'out_indices=\(1, 2, 3\): .* each in 0..2'):
        CreamBackbone(arch=str(search / 'arch.json'), out_indices=(1, 2, 3))


def _widths(codes):
    masks = codes[codes > 0]
    return np.array([bin(int(c)).count('1') for c in masks])


def test_macs_constrained_sampler_keeps_widths_uniform():
    """A range that holds 60 % of the draws: whole-draw rejection favours 1-op layers (cheaper); redrawing
    only the op sets keeps k ~ U{1, 2}. (The demo's 8-20 M holds 99.8 %: there neither is biased.)"""
    depths, rng = (1, 1, 1, 1, 1), (10e6, 14e6)
    kept = ArchSampler(CREAM_SPACE, 64, 10, depths=depths, max_paths=2, macs_range=rng, seed=0).sample_codes(3000)
    old = ArchSampler(CREAM_SPACE, 64, 10, depths=depths, max_paths=2, macs_range=rng, seed=0,
                      keep_widths=False).sample_codes(3000)
    table = cost_table(CREAM_SPACE, 64, 10).masks(2)
    for codes in (kept, old):
        macs = table.macs_of(codes)
        assert macs.min() >= rng[0] and macs.max() <= rng[1]
    two_kept, two_old = (float(np.mean(_widths(c) == 2)) for c in (kept, old))
    assert two_kept == pytest.approx(0.5, abs=0.03)                 # k uniform, as unconstrained MixPath
    assert two_old < 0.45                                            # the bias the redraw removes
    # the op sets given k stay uniform: every pair of ops appears among the 2-op layers
    assert len(np.unique(kept[kept > 0][_widths(kept) == 2])) == 15
    # single-path sampling ignores keep_widths
    a = ArchSampler(CREAM_SPACE, 64, 10, depths=depths, macs_range=(8e6, 10e6), seed=0).sample_codes(500)
    b = ArchSampler(CREAM_SPACE, 64, 10, depths=depths, macs_range=(8e6, 10e6), seed=0,
                    keep_widths=False).sample_codes(500)
    assert np.array_equal(a, b)
