"""The latency lookup table: the real blocks on their real inputs, the file, prediction, refusals."""
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cream_det.errors import ArchError, LatencyTableError, SpaceError
from cream_det.models import build_subnet
from cream_det.models.latency import Correction, LatencyTable, fit_correction, fit_scale, resolve_space
from cream_det.models.latency_measure import RealNet, calibrate, measure_arch, measure_table, time_module
from cream_det.space import Arch, Op, SearchSpace, StageSpec
from script_modules import load_script

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures('one_thread')

RES, NCLS = 32, 10
# the first block widens the 8-channel stem to 16 (the default first_block's c16): stage 1's first layer
# gets 16 channels at the stem's 16 x 16 map, its later layers 8 channels at 8 x 8
TINY = SearchSpace('tiny_latency', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 2, Op(3, 2), 3)),
                   (Op(3, 2), Op(5, 2)), stem_channels=8, last_channels=24, head_channels=32)
#: the input of each slot in the real net, by hand: (batch, channels, height, width)
TINY_INPUTS = [(1, 16, 16, 16), (1, 8, 8, 8), (1, 8, 8, 8), (1, 16, 4, 4), (1, 16, 4, 4)]


@pytest.fixture(scope='module')
def table(one_thread) -> LatencyTable:
    return measure_table(TINY, RES, num_classes=NCLS, warmup=1, repeats=3)


def arch(*stages) -> Arch:
    return Arch(tuple(tuple(Op.parse(o) for o in st) for st in stages), RES, NCLS, TINY)


def test_every_slot_is_timed_on_the_real_nets_input(table):
    assert [tuple(s) for s in table.input_shapes] == TINY_INPUTS
    real = RealNet(TINY, RES, 1, NCLS)
    assert real.fixed_inputs == {'stem': (1, 3, 32, 32), 'first_block': (1, 8, 16, 16),
                                 'last_conv': (1, 16, 4, 4), 'head': (1, 24, 4, 4)}


def test_slot_blocks_are_the_subnets_blocks():
    real = RealNet(TINY, RES, 1, NCLS)
    for op in TINY.ops:
        net = build_subnet(Arch(((op, op), (op, op, op)), RES, NCLS, TINY))
        blocks = [b for stage in net.blocks[1:-1] for b in stage]
        for slot, ref in enumerate(blocks):
            block = real.slot_block(slot, op)
            assert block.conv_dw.stride == ref.conv_dw.stride and block.has_skip == ref.has_skip, (slot, op)
            assert {k: v.shape for k, v in block.state_dict().items()} == \
                   {k: v.shape for k, v in ref.state_dict().items()}, (slot, op)


def test_table_entries_are_positive_and_stage_layers_share_one_timing(table):
    assert (table.ms[:, :-1] > 0).all() and (table.ms[:, -1] == 0).all()
    assert all(v > 0 for v in table.fixed.values())
    # stage 2's second and third layers are one block on one input: timed once
    np.testing.assert_array_equal(table.ms[3], table.ms[4])
    # ... but each stage's first (strided, wider-input) layer is timed on its own, not copied from the others
    assert not np.isin(table.ms[0, :-1], table.ms[1]).any() and not np.isin(table.ms[2, :-1], table.ms[3]).any()


def test_round_trip_and_prediction_is_the_hand_sum(table, tmp_path):
    path = table.save(tmp_path / 't.json')
    d = json.loads(path.read_text())
    loaded = LatencyTable.load(path, TINY, RES)
    np.testing.assert_array_equal(loaded.ms, table.ms)
    assert loaded.fixed == table.fixed and loaded.input_shapes == table.input_shapes
    assert (d['threads'], d['batch'], d['resolution'], d['device']) == (1, 1, RES, 'cpu')
    assert {'torch', 'timm', 'python'} <= set(d['versions'])
    fixed = sum(d['fixed_ms'].values())
    s = d['slots']
    # stage 1: k5e2 (slot 0); stage 2: k3e2, k5e2 (slots 2, 3); slots 1 and 4 skipped
    a = arch(['k5e2'], ['k3e2', 'k5e2'])
    hand = fixed + s[0]['ms']['k5e2'] + s[2]['ms']['k3e2'] + s[3]['ms']['k5e2']
    assert loaded.predict(a) == pytest.approx(hand, rel=1e-12)
    deeper = arch(['k5e2', 'k3e2'], ['k3e2', 'k5e2', 'k5e2'])
    assert loaded.predict(deeper) == pytest.approx(hand + s[1]['ms']['k3e2'] + s[4]['ms']['k5e2'], rel=1e-12)
    batch = loaded.predict_codes(np.stack([a.encode(), deeper.encode()]))
    np.testing.assert_allclose(batch, [loaded.predict(a), loaded.predict(deeper)], rtol=1e-12)


def test_corrections_fold_into_the_entries_and_are_kept(table, tmp_path):
    a, b = arch(['k3e2'], ['k5e2']), arch(['k5e2', 'k3e2'], ['k5e2', 'k3e2'])
    raw = table.predict(a)
    corrected = table.with_correction(Correction('global', (1.5,), 0.25, 7))
    assert corrected.predict(a) == pytest.approx(1.5 * raw + 0.25)
    assert LatencyTable.load(corrected.save(tmp_path / 'c.json')).correction == Correction('global', (1.5,), 0.25, 7)
    # per stage: the fixed parts unscaled, stage 1's slots x2, stage 2's x3
    staged = table.with_correction(Correction('stage', (2.0, 3.0), -0.1, 9))
    s1, s2 = table.ms[0, 1] + table.ms[1, 0], table.ms[2, 1] + table.ms[3, 0]
    assert staged.predict(b) == pytest.approx(table.fixed_ms - 0.1 + 2 * s1 + 3 * s2)
    assert LatencyTable.load(staged.save(tmp_path / 's.json')).predict(b) == pytest.approx(staged.predict(b))
    with pytest.raises(LatencyTableError, match='a stage one 2'):
        table.with_correction(Correction('stage', (2.0,), 0.0, 9))


def test_fit_correction_recovers_a_known_line(table):
    rng = np.random.default_rng(0)
    archs = [arch(*st) for st in [(['k3e2'], ['k3e2']), (['k5e2', 'k5e2'], ['k3e2']), (['k3e2'], ['k5e2'] * 3),
                                  (['k5e2', 'k3e2'], ['k5e2', 'k3e2']), (['k3e2', 'k3e2'], ['k3e2'] * 3),
                                  (['k5e2'], ['k5e2', 'k5e2'])]]
    codes = np.stack([x.encode() for x in archs])
    parts = table.stage_sums(codes)
    np.testing.assert_allclose(parts.sum(1) + table.fixed_ms, table.raw_of(codes))
    c = fit_correction(table, codes, 1.3 * table.raw_of(codes) + 0.2)
    assert (c.kind, c.scales, c.offset, c.fit_archs) == ('global', (pytest.approx(1.3),), pytest.approx(0.2), 6)
    true = table.fixed_ms + 0.5 + parts @ np.array([1.1, 1.7])
    c = fit_correction(table, codes, true, 'stage')
    np.testing.assert_allclose(c.scales, [1.1, 1.7])
    np.testing.assert_allclose(table.with_correction(c).predict_codes(codes), true)
    with pytest.raises(LatencyTableError, match='scale <= 0'):
        fit_correction(table, codes, -table.raw_of(codes) + 20 + rng.normal(0, 1e-3, len(codes)))
    with pytest.raises(LatencyTableError, match='needs >= 4 archs'):
        fit_correction(table, codes[:3], table.raw_of(codes[:3]), 'stage')


def test_fit_scale_is_the_median_ratio_with_no_offset(table):
    """A run-time table's quick calibration: one stray timing (10x) must not move the scale, as it moves a
    least-squares line or a mean ratio, and no offset may be fitted (one can make fast archs negative)."""
    archs = [arch(*st) for st in [(['k3e2'], ['k3e2']), (['k5e2', 'k5e2'], ['k3e2']), (['k3e2'], ['k5e2'] * 3),
                                  (['k5e2', 'k3e2'], ['k5e2', 'k3e2']), (['k3e2', 'k3e2'], ['k3e2'] * 3)]]
    codes = np.stack([x.encode() for x in archs])
    measured = 1.3 * table.raw_of(codes)
    measured[2] *= 10
    c = fit_scale(table, codes, measured)
    assert (c.kind, c.scales, c.offset, c.fit_archs) == ('global', (pytest.approx(1.3),), 0.0, 5)
    np.testing.assert_allclose(table.with_correction(c).predict_codes(codes[[0, 1, 3, 4]]),
                               measured[[0, 1, 3, 4]])
    with pytest.raises(LatencyTableError, match='not > 0'):
        fit_scale(table, codes, -measured)
    with pytest.raises(LatencyTableError, match='a scale needs >= 1 arch'):
        fit_scale(table, codes, measured[:3])


def test_calibration_fits_whole_archs(table):
    archs = [arch(['k3e2'], ['k3e2']), arch(['k5e2', 'k5e2'], ['k3e2']), arch(['k5e2', 'k5e2'], ['k5e2'] * 3)]
    calibrated, measured = calibrate(table, archs, warmup=2, repeats=7)
    c = calibrated.correction
    assert c.fit_archs == 3 and c.kind == 'global' and c.scales[0] > 0 and len(measured) == 3
    raw = [table.predict(a) for a in archs]
    np.testing.assert_allclose([calibrated.predict(a) for a in archs], np.asarray(raw) * c.scales[0] + c.offset)
    assert np.corrcoef(raw, measured)[0, 1] > 0.5       # 2 vs 3 vs 5 layers: the sums follow the measurements


@pytest.mark.parametrize('correction', [None, Correction('stage', (0.5, 3.0), 1.0, 9)])
def test_bounds_are_the_cheapest_and_dearest_arch(table, correction):
    table = table.with_correction(correction)
    preds = {}
    for d1, d2 in itertools.product((1, 2), (1, 2, 3)):
        for ops in itertools.product(TINY.ops, repeat=d1 + d2):
            preds.setdefault((d1, d2), []).append(table.predict(Arch((ops[:d1], ops[d1:]), RES, NCLS, TINY)))
    every = sum(preds.values(), [])
    assert table.bounds() == (pytest.approx(min(every)), pytest.approx(max(every)))
    assert table.bounds((2, 1)) == (pytest.approx(min(preds[2, 1])), pytest.approx(max(preds[2, 1])))


def test_another_space_or_resolution_is_refused(table, tmp_path):
    path = table.save(tmp_path / 't.json')
    other = SearchSpace('other_latency', TINY.stages, TINY.ops, stem_channels=8, last_channels=24, head_channels=32)
    with pytest.raises(LatencyTableError, match=r'tiny_latency.*not for space other_latency'):
        LatencyTable.load(path, other, RES)
    same_name = SearchSpace('tiny_latency', TINY.stages, TINY.ops, stem_channels=16, last_channels=24,
                            head_channels=32)           # another spec under the same name: another digest
    with pytest.raises(LatencyTableError, match='spec digest'):
        LatencyTable.load(path, same_name, RES)
    with pytest.raises(LatencyTableError, match=r'at 32 px.*not for 64 px'):
        LatencyTable.load(path, TINY, 64)
    with pytest.raises(LatencyTableError, match='not for 64 px'):
        table.predict(arch(['k3e2'], ['k3e2']).with_(resolution=64))
    with pytest.raises(ArchError, match='multi-path.*a latency table'):
        table.predict(Arch(((Op(3, 2),), ((Op(3, 2), Op(5, 2)),)), RES, NCLS, TINY))


def test_bad_files_give_one_clear_error(table, tmp_path):
    with pytest.raises(LatencyTableError, match='missing.json: latency table not found'):
        LatencyTable.load(tmp_path / 'missing.json')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"format": "cream_det.latency/1", ')
    with pytest.raises(LatencyTableError, match='bad.json: not valid JSON'):
        LatencyTable.load(bad)
    d = table.to_dict()
    for edit, msg in ((lambda d: d.pop('fixed_ms'), 'missing field.*fixed_ms'),
                      (lambda d: d['slots'].pop(), 'slots: 5 entries expected'),
                      (lambda d: d['slots'][0]['ms'].pop('k5e2'), 'malformed entry'),
                      (lambda d: d['slots'][0]['ms'].update(k5e2=-1.0), '>= 0'),
                      (lambda d: d.update(format='x'), 'format'),
                      (lambda d: d['space_spec'].update(stem_channels=16), 'space_spec disagrees')):
        dd = json.loads(json.dumps(d))
        edit(dd)
        bad.write_text(json.dumps(dd))
        with pytest.raises(LatencyTableError, match=msg):
            LatencyTable.load(bad)
    with pytest.raises(SpaceError, match='no_such_space'):
        resolve_space('no_such_space')


def test_runtimes_time_the_module():
    real = RealNet(TINY, RES, 1, NCLS)
    block, shape = real.slot_block(0, TINY.ops[1]), real.slot_inputs[0]
    assert time_module(block, shape, runtime='torch', warmup=1, repeats=2) > 0
    pytest.importorskip('onnxruntime')
    assert time_module(block, shape, runtime='ort', warmup=1, repeats=2) > 0
    assert measure_arch(arch(['k3e2'], ['k5e2']), warmup=1, repeats=2) > 0


@pytest.mark.cuda
def test_cuda_table_and_arch():
    t = measure_table(TINY, RES, num_classes=NCLS, device='cuda', warmup=1, repeats=3)
    assert t.device == 'cuda' and t.device_name and (t.ms[:, :-1] > 0).all()
    assert measure_arch(arch(['k3e2'], ['k5e2']), device='cuda', warmup=1, repeats=3) > 0


@pytest.mark.slow
def test_tool_writes_a_table_and_refuses_bad_input(tmp_path):
    spec = tmp_path / 'space.json'
    spec.write_text(json.dumps(TINY.to_dict()))
    out = tmp_path / 'table.json'
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, str(ROOT / 'tools/latency_table.py'), '--space', str(spec), '--res', '32',
                        '--num-classes', str(NCLS), '--warmup', '1', '--repeats', '2', '--progress-every', '4',
                        '--out', str(out)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert '[4/' in r.stderr and 'tiny_latency' in r.stdout
    t = LatencyTable.load(out, TINY, RES)
    assert [tuple(s) for s in t.input_shapes] == TINY_INPUTS and t.correction is None


def test_benchmark_refuses_a_table_of_another_space_or_resolution(table, tmp_path):
    bench = load_script('benchmarks/latency_table.py')
    path = str(table.save(tmp_path / 't.json'))
    with pytest.raises(LatencyTableError, match=r't.json was measured for space tiny_latency.*not for space cream_'):
        bench.main(['--table', path, '--space', 'cream_mbv3', '--quick'])
    with pytest.raises(LatencyTableError, match='not for 64 px'):
        bench.main(['--table', path, '--res', '64'])


# ---- a detector's backbone at a non-square input size ---------------------------------------------------
DET_SIZE = (40, 64)                      # (height, width), as a 1333x800 COCO image padded is (800, 1344)
#: each slot's input in the backbone at DET_SIZE: the maps keep the input's aspect ratio, height first
DET_INPUTS = [(1, 16, 20, 32), (1, 8, 10, 16), (1, 8, 10, 16), (1, 16, 5, 8), (1, 16, 5, 8)]


@pytest.fixture(scope='module')
def backbone_table(one_thread) -> LatencyTable:
    return measure_table(TINY, DET_SIZE, num_classes=NCLS, warmup=2, repeats=7, mode='backbone')


def detector_backbone(a: Arch) -> torch.nn.Module:
    """What CreamBackbone runs for ``a`` (its ``net``: timm's features-only subnet), levels 1-2 out as a
    RetinaNet config would take them."""
    return build_subnet(a, features_only=True, out_indices=(1, 2)).eval()


def test_backbone_table_times_what_the_detector_backbone_runs(backbone_table):
    t = backbone_table
    assert (t.mode, t.input_size, t.resolution) == ('backbone', DET_SIZE, DET_SIZE)
    assert set(t.fixed) == {'stem', 'first_block', 'last_conv'}          # no pool / 1x1 conv to 1280 / classifier
    assert [tuple(s) for s in t.input_shapes] == DET_INPUTS
    real = RealNet(TINY, DET_SIZE, 1, NCLS, mode='backbone')
    assert real.fixed_inputs == {'stem': (1, 3, 40, 64), 'first_block': (1, 8, 20, 32), 'last_conv': (1, 16, 5, 8)}
    a = arch(['k5e2', 'k3e2'], ['k3e2', 'k5e2', 'k5e2'])
    net, seen = detector_backbone(a), []
    for b in [b for stage in net.blocks[1:-1] for b in stage]:
        b.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    with torch.inference_mode():
        net(torch.zeros(1, 3, *DET_SIZE))
    assert seen == DET_INPUTS


def test_backbone_table_predicts_the_backbone_measured_whole(backbone_table):
    for stages in ((['k3e2'], ['k3e2']), (['k5e2', 'k5e2'], ['k5e2'] * 3)):
        a = arch(*stages)
        measured = time_module(detector_backbone(a), (1, 3, *DET_SIZE), warmup=3, repeats=15)
        # generous: blocks timed alone miss the whole forward's cache misses (docs/latency.md); the machine is shared
        assert 0.5 < backbone_table.predict(a) / measured < 2.0, (stages, backbone_table.predict(a), measured)
        assert measure_arch(a, mode='backbone', input_size=DET_SIZE, warmup=1, repeats=2) > 0
    # the arch's own (search) resolution and class count do not matter to a backbone table
    a = arch(['k3e2'], ['k5e2'])
    assert backbone_table.predict(a.with_(resolution=224, num_classes=1000)) == backbone_table.predict(a)


def test_a_table_of_another_input_size_or_mode_is_refused(backbone_table, table, tmp_path):
    path = backbone_table.save(tmp_path / 'det.json')
    d = json.loads(path.read_text())
    assert (d['resolution'], d['mode'], sorted(d['fixed_ms'])) == ([40, 64], 'backbone',
                                                                   ['first_block', 'last_conv', 'stem'])
    loaded = LatencyTable.load(path, TINY, DET_SIZE, mode='backbone')
    a = arch(['k5e2'], ['k3e2', 'k5e2'])
    assert loaded.input_size == DET_SIZE and loaded.predict(a) == pytest.approx(backbone_table.predict(a), rel=1e-12)
    assert loaded.check(TINY, list(DET_SIZE), num_classes=1000) is loaded       # no head: any class count
    # a search at its own resolution may price its archs' backbones with it; a classifier table only at its size
    assert loaded.check_search(TINY, 224, 1000) is loaded and table.check_search(TINY, RES, NCLS) is table
    with pytest.raises(LatencyTableError, match='not for 64 px'):
        table.check_search(TINY, 64, NCLS)
    other = SearchSpace('other_latency', TINY.stages, TINY.ops, stem_channels=8, last_channels=24, head_channels=32)
    with pytest.raises(LatencyTableError, match='not for space other_latency'):
        loaded.check_search(other, 224)
    with pytest.raises(LatencyTableError, match=r'det.json was measured for space tiny_latency .* at 40x64 px, '
                                                r'batch 1, the backbone only \(no head\), not for 64x40 px; '
                                                r'.*--input-size 64 40 --mode backbone'):
        LatencyTable.load(path, TINY, (64, 40))
    with pytest.raises(LatencyTableError, match=r'not for 40 px; .* --res 40 --mode backbone'):
        LatencyTable.load(path, TINY, 40)
    with pytest.raises(LatencyTableError, match='not for the classifier mode'):
        loaded.check(TINY, DET_SIZE, mode='classifier')
    with pytest.raises(LatencyTableError, match=r'at 32 px, batch 1, 10 classes, not for the backbone mode'):
        table.check(TINY, RES, mode='backbone')
    # a file written before the modes (an int resolution, no mode) is a classifier table
    old = table.to_dict()
    old.pop('mode')
    (tmp_path / 'old.json').write_text(json.dumps(old))
    assert LatencyTable.load(tmp_path / 'old.json', TINY, RES, mode='classifier').mode == 'classifier'
    bad = dict(d, resolution=[40, 0])
    (tmp_path / 'bad.json').write_text(json.dumps(bad))
    with pytest.raises(LatencyTableError, match=r'bad.json: input size \[40, 0\]'):
        LatencyTable.load(tmp_path / 'bad.json')


def test_a_search_prices_its_paths_with_a_detector_size_table(backbone_table, table, tmp_path):
    """The search's loader takes a backbone table at the detector's size whatever the supernet's own
    resolution, and the arch file's record says what the milliseconds are of."""
    from cream_det.engine.search_latency import load_search_table
    det, cls = backbone_table.save(tmp_path / 'det.json'), table.save(tmp_path / 'cls.json')
    loaded = load_search_table(str(det), TINY, 224, 1000)
    a = arch(['k5e2'], ['k3e2', 'k5e2'])
    record = loaded.arch_record(a.with_(resolution=224, num_classes=1000))
    assert record['mode'] == 'backbone' and record['resolution'] == DET_SIZE
    assert record['predicted_ms'] == pytest.approx(backbone_table.predict(a), rel=1e-12)
    assert load_search_table(str(cls), TINY, RES, NCLS).arch_record(a)['mode'] == 'classifier'
    with pytest.raises(LatencyTableError, match='not for 224 px'):
        load_search_table(str(cls), TINY, 224, NCLS)


def test_tool_measures_a_backbone_table_at_an_input_size(tmp_path):
    tool = load_script('tools/latency_table.py')
    space = tmp_path / 'space.json'
    space.write_text(json.dumps(TINY.to_dict()))
    out = tmp_path / 't.json'
    tool.main(['--space', str(space), '--input-size', '40', '64', '--mode', 'backbone', '--warmup', '1',
               '--repeats', '2', '--out', str(out)])
    t = LatencyTable.load(out, TINY, DET_SIZE, mode='backbone')
    assert [tuple(s) for s in t.input_shapes] == DET_INPUTS
    with pytest.raises(SystemExit):                     # one size or the other
        tool.main(['--res', '32', '--input-size', '40', '64', '--out', str(out)])


def test_calibration_archs_can_be_drawn_at_the_searchs_depths():
    """A run-time table is calibrated where the search's paths are: archs at the supernet's depths, not over
    the whole space (whose deeper archs fit a scale that misprices the shallow ones)."""
    from cream_det.models.latency_measure import sample_archs
    fixed = sample_archs(TINY, RES, 6, num_classes=NCLS, depths=(1, 2))
    assert len({a.hash for a in fixed}) == 6 and all(a.depths == (1, 2) for a in fixed)
    free = sample_archs(TINY, RES, 12, num_classes=NCLS)
    assert len({a.depths for a in free}) > 1
