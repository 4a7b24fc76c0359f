"""Search space, arch type and file format, sampler."""
import json

import numpy as np
import pytest

from cream_det.errors import ArchError, SpaceError
from cream_det.space import CREAM_SPACE, Arch, ArchSampler, Op, SearchSpace, StageSpec, cost_table

OFFICIAL_287 = [[0], [3], [3, 3], [3, 1, 3], [3, 3, 3, 3], [3, 3, 3], [0]]


def _arch(**kw):
    return Arch.from_choice_list(OFFICIAL_287, 224, **kw)


def test_choice_list_single_block_rule():
    a = Arch.from_choice_list([[0], [3], [3, 3], [3, 3], [3], [3], [0]], 64)
    # single-block stages keep the template op whatever the index says (the authors' generator)
    assert a.stages[0] == (Op(3, 4),)
    assert a.stages[3] == (Op(3, 6),)
    assert a.stages[4] == (Op(5, 6),)
    assert a.stages[1] == (Op(5, 6), Op(5, 6))
    # the five-stage form (without the fixed [0] stages) reads the same
    assert Arch.from_choice_list([[3], [3, 3], [3, 3], [3], [3]], 64) == a


@pytest.mark.parametrize('suffix', ['.json', '.yaml'])
def test_roundtrip(tmp_path, suffix):
    a = _arch(name='x')
    p = a.save(tmp_path / f'a{suffix}')
    b = Arch.load(p)
    assert b == a and b.name == 'x' and b.hash == a.hash
    assert b.to_dict() == a.to_dict()


def test_hash_stable_and_discriminating():
    a = _arch()
    assert a.hash == _arch(name='other').hash                    # name is not part of identity
    assert a.hash != a.with_(resolution=192).hash
    assert a.hash == 'aad3f94b31'                                 # stable across runs and versions


def test_encode_decode():
    a = _arch()
    code = a.encode()
    assert code.shape == (CREAM_SPACE.max_layers,) and (code == -1).sum() == 30 - 13
    assert Arch.decode(code, resolution=224) == a


def _write(tmp_path, text, name='a.json'):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize('mutate, field', [
    (lambda d: d.update(stages=[['k9e4']] + d['stages'][1:]), 'stages[0][0]: op k9e4 is not in'),
    (lambda d: d.update(stages=[['k3e4'] * 7] + d['stages'][1:]), 'stages[0]: depth 7 outside'),
    (lambda d: d.update(stages=[[]] + d['stages'][1:]), 'stages[0]: depth 0 outside'),
    (lambda d: d.update(stages=d['stages'][:4]), 'stages: 4 stages given'),
    (lambda d: d.update(resolution=100), 'resolution: 100 is not a positive multiple of 32'),
    (lambda d: d.update(num_classes=0), 'num_classes'),
    (lambda d: d.update(macs=1), 'macs: the file records 1'),
    (lambda d: d.update(space='imaginary'), "space: unknown search space 'imaginary'"),
    (lambda d: d.update(stages=[['k3x4']] + d['stages'][1:]), "stages[0][0]: op 'k3x4' is not of the form"),
    (lambda d: d.update(colour='red'), 'unknown field(s): colour'),
    (lambda d: d.pop('stages'), "missing field 'stages'"),
])
def test_bad_arch_files_name_file_and_field(tmp_path, mutate, field):
    d = _arch().to_dict()
    mutate(d)
    p = _write(tmp_path, json.dumps(d))
    with pytest.raises(ArchError) as e:
        Arch.load(p)
    assert str(p) in str(e.value) and field in str(e.value)


def test_malformed_and_missing_files(tmp_path):
    with pytest.raises(ArchError, match='not valid JSON'):
        Arch.load(_write(tmp_path, '{"stages": [['))
    with pytest.raises(ArchError, match='not valid YAML'):
        Arch.load(_write(tmp_path, 'stages: [[', 'a.yaml'))
    with pytest.raises(ArchError, match='arch file not found'):
        Arch.load(tmp_path / 'nope.json')
    with pytest.raises(ArchError, match='must be a mapping'):
        Arch.load(_write(tmp_path, '[1, 2]'))


def test_bad_choice_lists():
    with pytest.raises(ArchError, match='expected 5'):
        Arch.from_choice_list([[0], [1]])
    with pytest.raises(ArchError, match='stage 2 index 1 is 6'):
        Arch.from_choice_list([[0], [3], [3, 6], [3, 3], [3], [3], [0]])


def test_custom_space_is_data_not_code(tmp_path):
    space = SearchSpace(name='tiny_test_space', stages=(StageSpec(16, 2, Op(3, 3), 2), StageSpec(32, 2, Op(3, 3), 3)),
                        ops=(Op(3, 3), Op(5, 3)), stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
                        last_channels=64, head_channels=128)
    a = Arch(((Op(5, 3),), (Op(3, 3), Op(5, 3))), 64, 10, space)
    p = a.save(tmp_path / 'custom.json')
    assert 'space_spec' in json.loads(p.read_text())              # unregistered space travels with the file
    assert Arch.load(p) == a
    d = json.loads(p.read_text())
    d['space_spec']['name'] = 'renamed'
    with pytest.raises(ArchError, match='disagrees with space_spec'):
        Arch.from_dict(d)


def test_sampler_respects_range_and_depths():
    lo, hi = 350e6, 450e6
    s = ArchSampler(CREAM_SPACE, 224, depths=(4, 4, 4, 4, 4), macs_range=(lo, hi), seed=0)
    codes = s.sample_codes(500)
    macs = cost_table(CREAM_SPACE, 224).macs_of(codes)
    assert codes.shape == (500, CREAM_SPACE.max_layers)
    assert ((macs >= lo) & (macs <= hi)).all()
    assert ((codes >= 0).reshape(500, 5, 6).sum(-1) == 4).all()
    a = s.sample()
    assert lo <= a.macs <= hi and a.depths == (4, 4, 4, 4, 4)


def test_sampler_is_seeded_and_uses_op_probs():
    a = ArchSampler(seed=3).sample_codes(50)
    assert np.array_equal(a, ArchSampler(seed=3).sample_codes(50))
    only_k3e4 = ArchSampler(op_probs=[1, 0, 0, 0, 0, 0], seed=0).sample_codes(20)
    assert set(np.unique(only_k3e4)) <= {-1, 0}


def test_infeasible_range_reports_true_bounds():
    t = cost_table(CREAM_SPACE, 224)
    lo, hi = t.bounds((4, 4, 4, 4, 4))
    with pytest.raises(SpaceError) as e:
        ArchSampler(CREAM_SPACE, 224, depths=(4, 4, 4, 4, 4), macs_range=(1e9, 2e9))
    assert f'{lo / 1e6:.2f}M' in str(e.value) and f'{hi / 1e6:.2f}M' in str(e.value)
    # the bounds are attained by the extreme archs
    cheapest = Arch(tuple((Op(3, 4),) * 4 for _ in range(5)), 224)
    assert cheapest.macs == lo
    with pytest.raises(SpaceError, match='too narrow'):
        ArchSampler(macs_range=(lo + 1, lo + 2), depths=(4, 4, 4, 4, 4), max_draws=20000, seed=0).sample_codes(1)
