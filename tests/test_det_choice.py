"""Detection-aware choice (tools/choose_det_arch.py): a real tiny Cream search, RetinaNet fine-tunes per board path.

The search is tools/search.py itself (configs/search/cream_demo.py, one epoch on the digits), so
board.json and the checkpoint are exactly what a user's search leaves behind.
"""
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import cream_det  # noqa: F401
from cream_det.det.board_choice import Candidate, find_search_checkpoint, rank_records, select_candidates
from cream_det.engine import load_config
from cream_det.engine.det_choice import CandidateStartHook, bbox_metrics, candidate_config
from cream_det.errors import CheckpointError, ConfigError
from cream_det.models import build
from cream_det.models.checkpoint import save_subnet_checkpoint
from cream_det.search.board import FORMAT as BOARD_FORMAT
from cream_det.space import Arch, get_space, get_arch

ROOT = Path(__file__).resolve().parents[1]
DEPTHS = (1, 1, 1, 1, 1)        # the search the tests run (inside cream_demo.py's MACs range)
DEMO = ROOT / 'configs/retinanet/retinanet_cream-demo_fpn_digits.py'
HEAD_KEYS = ('conv_head.', 'classifier.', 'norm_head.')


def _tool():
    spec = importlib.util.spec_from_file_location('choose_det_arch_tool', ROOT / 'tools/choose_det_arch.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _det_opts(coco: Path) -> list:
    root = str(coco) + '/'
    ann = root + 'annotations/instances_val.json'
    return [f'{k}.dataset.data_root={root}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')] + \
           [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def _choose(search, coco, work, *extra, config=DEMO):
    return _tool().main([str(search), str(config), '--work-dir', str(work), *extra, '--cfg-options', *_det_opts(coco)])


def _digest(sd):
    """sha256 over (key, dtype, raw bytes), keys sorted: the format results.json documents for init_digests."""
    h = hashlib.sha256()
    for k in sorted(sd):
        t = sd[k].detach().contiguous().reshape(-1)
        h.update(k.encode() + str(t.dtype).encode() + t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _board_json(path: Path, archs) -> Path:
    entries = [{'rank': i, 'acc': 50.0 - i, 'macs': a.macs, 'step': i, 'arch': a.to_dict()}
               for i, a in enumerate(archs, 1)]
    path.mkdir(parents=True, exist_ok=True)
    (path / 'board.json').write_text(json.dumps({'format': BOARD_FORMAT, 'size': 5, 'margin': 5.0, 'entries': entries}))
    return path


# ---- fast: the pieces --------------------------------------------------------------------------------
def _cand(rank, macs, arch='cream_14'):
    return Candidate(rank, get_arch(arch), 50.0 - rank, macs, rank)


def test_rank_records_orders_by_map_then_map50_then_board_rank():
    recs = [{'board_rank': 1, 'bbox_mAP': 0.10, 'mAP50': 0.3}, {'board_rank': 2, 'bbox_mAP': 0.30, 'mAP50': 0.5},
            {'board_rank': 3, 'bbox_mAP': 0.10, 'mAP50': 0.4}, {'board_rank': 4, 'bbox_mAP': 0.10, 'mAP50': 0.4}]
    rows = rank_records(recs)
    assert [r['board_rank'] for r in rows] == [2, 3, 4, 1]
    assert [r['rank'] for r in rows] == [1, 2, 3, 4]


def test_select_candidates_keeps_macs_range_then_top():
    board = [_cand(1, 30), _cand(2, 10), _cand(3, 15), _cand(4, 18)]
    sel, skipped = select_candidates(board, (12, 20), top=1)
    assert [c.board_rank for c in sel] == [3]
    assert {s['board_rank']: s['reason'].split()[0] for s in skipped} == {1: 'MACs', 2: 'MACs', 4: 'not'}
    assert [c.board_rank for c in select_candidates(board, None, None)[0]] == [1, 2, 3, 4]
    with pytest.raises(ConfigError, match='--ignore-macs-range'):
        select_candidates(board, (100, 200))
    with pytest.raises(ConfigError, match='--top 0'):
        select_candidates(board, None, 0)


def test_candidate_config_sets_backbone_schedule_and_unique_names(tmp_path):
    base = load_config(DEMO)
    a = candidate_config(base, tmp_path / 'x.pth', tmp_path / 'a', ('iters', 7), 3, 'a')
    b = candidate_config(base, tmp_path / 'y.pth', tmp_path / 'b', ('iters', 7), 3, 'a')
    assert 'arch' not in a.model.backbone and a.model.backbone.init_cfg.checkpoint == str(tmp_path / 'x.pth')
    assert base.model.backbone.arch == 'cream_14'                       # the base config is untouched
    assert a.train_cfg.type == 'IterBasedTrainLoop' and a.train_cfg.max_iters == 7 and a.train_cfg.val_begin > 7
    assert all(s.get('by_epoch') is False for s in a.param_scheduler) and len(a.param_scheduler) == 1
    assert a.default_hooks.checkpoint.by_epoch is False and a.randomness.seed == 3
    assert a.experiment_name != b.experiment_name and 'name' not in a.visualizer
    e = candidate_config(base, tmp_path / 'x.pth', tmp_path / 'a', ('epochs', 2), 0, 'a')
    assert e.train_cfg.max_epochs == 2 and e.train_cfg.val_begin == 3 and len(e.param_scheduler) == 2


def test_bbox_metrics():
    assert bbox_metrics({'coco/bbox_mAP': 0.25, 'coco/bbox_mAP_50': 0.5}, 'c') == {'bbox_mAP': 0.25, 'mAP50': 0.5}
    assert bbox_metrics({}, 'c') == {'bbox_mAP': 0.0, 'mAP50': 0.0}       # mmdet: no detections, no metrics
    with pytest.raises(ConfigError, match='no bbox_mAP'):
        bbox_metrics({'accuracy/top1': 3.0}, 'c')


def test_start_hook_refuses_a_backbone_without_the_inherited_weights(tmp_path):
    from cream_det.det import CreamBackbone
    arch = get_arch('cream_14')
    torch.manual_seed(1)
    ckpt = save_subnet_checkpoint(tmp_path / 'inh.pth', build('cream_14').state_dict(), arch)
    det = torch.nn.Module()
    det.backbone = CreamBackbone(arch='cream_14')            # its own random init: not the checkpoint's
    det.neck = torch.nn.Conv2d(2, 2, 1)
    hook = CandidateStartHook(ckpt, seed=0)
    with pytest.raises(CheckpointError, match='does not hold the inherited weights'):
        hook.before_train(SimpleNamespace(model=det))
    sd = {k: v for k, v in torch.load(ckpt, weights_only=True)['state_dict'].items() if not k.startswith(HEAD_KEYS)}
    det.backbone.net.load_state_dict(sd)
    hook.before_train(SimpleNamespace(model=det))
    assert hook.digests['backbone'] == _digest(sd)


def test_find_search_checkpoint(tmp_path):
    moved = tmp_path / 'moved'
    moved.mkdir()
    (moved / 'epoch_2.pth').write_bytes(b'x')
    (moved / 'last_checkpoint').write_text('/somewhere/else/epoch_2.pth')       # written before the dir moved
    assert find_search_checkpoint(moved) == moved / 'epoch_2.pth'
    plain = tmp_path / 'plain'
    plain.mkdir()
    for n in (1, 3, 2):
        (plain / f'epoch_{n}.pth').write_bytes(b'x')
    assert find_search_checkpoint(plain) == plain / 'epoch_3.pth'


def test_bad_inputs_before_any_training(coco_digits, tmp_path):
    arch = get_arch('cream_14').with_(resolution=64, num_classes=10)
    # a detection config whose backbone is not a CreamBackbone
    resnet = tmp_path / 'resnet.py'
    resnet.write_text("_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'\n")
    with pytest.raises(ConfigError, match="model.backbone.type is 'ResNet'.*CreamBackbone"):
        _choose(_board_json(tmp_path / 's0', [arch]), coco_digits, tmp_path / 'w0', config=resnet)
    # no board.json
    (tmp_path / 's1').mkdir()
    with pytest.raises(ConfigError, match=r's1/board.json: board.json not found'):
        _choose(tmp_path / 's1', coco_digits, tmp_path / 'w1')
    # an empty board
    empty = _board_json(tmp_path / 's2', [])
    with pytest.raises(ConfigError, match='the board is empty'):
        _choose(empty, coco_digits, tmp_path / 'w2')
    # a board but no checkpoint
    with pytest.raises(CheckpointError, match='no supernet checkpoint.*--checkpoint'):
        _choose(_board_json(tmp_path / 's3', [arch]), coco_digits, tmp_path / 'w3')
    with pytest.raises(CheckpointError, match='missing.pth: supernet checkpoint not found'):
        _choose(tmp_path / 's3', coco_digits, tmp_path / 'w3', '--checkpoint', str(tmp_path / 'missing.pth'))
    # --resume of a choice that does not exist
    (tmp_path / 's3' / 'epoch_1.pth').write_bytes(b'x')
    with pytest.raises(ConfigError, match='--resume: .* does not exist'):
        _choose(tmp_path / 's3', coco_digits, tmp_path / 'nowhere', '--resume')
    assert not any((tmp_path / w).exists() for w in ('w0', 'w1', 'w2', 'w3', 'nowhere'))    # nothing written


def test_cli_prints_one_line_errors(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, str(ROOT / 'tools/choose_det_arch.py'), str(tmp_path), str(DEMO),
                        '--work-dir', str(tmp_path / 'w')], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 2 and 'board.json not found' in r.stderr and 'Traceback' not in r.stderr


# ---- slow: a real search, real fine-tunes ----------------------------------------------------------------
@pytest.fixture(scope='module')
def search_dir(imagenet_digits, tmp_path_factory):
    """tools/search.py on the digits for one epoch: a board of 2 paths and epoch_1.pth."""
    work = tmp_path_factory.mktemp('search')
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, str(ROOT / 'tools/search.py'), str(ROOT / 'configs/search/cream_demo.py'),
                        '--work-dir', str(work), '--cfg-options', f'train_dataloader.dataset.root={imagenet_digits}',
                        f'search_val_dataloader.dataset.root={imagenet_digits}', 'train_cfg.max_epochs=1',
                        'param_scheduler.0.end=1', 'model.strategy.warmup_epochs=0', 'model.strategy.board_size=2',
                        'model.strategy.meta_interval=3',      # 7 iterations: the demo's 10 would make no meta update
                        f'model.depths={list(DEPTHS)}'],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(json.loads((work / 'board.json').read_text())['entries']) == 2
    return work


def _inherited(search: Path) -> object:
    """The search's supernet, rebuilt here independently of the tool (cream_demo.py's space, DEPTHS)."""
    from cream_det.models.supernet import Supernet
    sd = torch.load(search / 'epoch_1.pth', map_location='cpu', weights_only=False)['state_dict']
    sn = Supernet(get_space('cream_mbv3'), DEPTHS, num_classes=10, resolution=64)
    sn.load_state_dict({k[len('supernet.'):]: v for k, v in sd.items()}, strict=True)
    return sn


@pytest.mark.slow
def test_choice_ranks_board_paths_from_inherited_weights_and_resumes(search_dir, coco_digits, tmp_path, one_thread):
    work = tmp_path / 'choice'
    first = _choose(search_dir, coco_digits, work, '--top', '1', '--iters', '3')
    assert len(first['rows']) == 1 and first['rows'][0]['board_rank'] == 1
    before = json.loads((work / 'results.json').read_text())['candidates']
    # no silent reuse of a work dir
    with pytest.raises(ConfigError, match='is not empty: pass --resume'):
        _choose(search_dir, coco_digits, work, '--top', '2', '--iters', '3')
    # --resume fine-tunes only the path not done yet
    ranking = _choose(search_dir, coco_digits, work, '--top', '2', '--iters', '3', '--resume')
    after = json.loads((work / 'results.json').read_text())['candidates']
    (h1, rec1), = before.items()
    assert after[h1] == rec1
    assert len(list((work / 'candidates' / rec1['work_dir'].split('/')[-1]).glob('*/*.log'))) == 1   # trained once

    board = json.loads((search_dir / 'board.json').read_text())['entries']
    rows = ranking['rows']
    assert len(rows) == len(board) == 2
    assert {r['hash'] for r in rows} == {e['arch']['hash'] for e in board}
    assert [r['bbox_mAP'] for r in rows] == sorted((r['bbox_mAP'] for r in rows), reverse=True)
    assert [r['rank'] for r in rows] == [1, 2]
    assert json.loads((work / 'ranking.json').read_text())['rows'] == rows
    table = (work / 'ranking.md').read_text()
    assert table.count('\n| ') == 1 + len(rows) and rows[0]['hash'] in table.split('\n| 1 |')[1].splitlines()[0]
    winner = Arch.load(work / 'arch.json')
    assert winner == Arch.from_dict(rows[0]['arch'])

    # the detector started from exactly the supernet's inherited weights of each path
    sn = _inherited(search_dir)
    for r in rows:
        sd = {k: v for k, v in sn.subnet_state_dict(Arch.from_dict(r['arch'])).items() if not k.startswith(HEAD_KEYS)}
        assert r['init_digests']['backbone'] == _digest(sd), r['hash']
        exported = torch.load(work / r['backbone_checkpoint'], weights_only=True)
        assert all(torch.equal(exported['state_dict'][k], v) for k, v in sd.items())
        assert Arch.from_dict(exported['meta']['cream_arch']) == Arch.from_dict(r['arch'])
    assert rows[0]['init_digests']['backbone'] != rows[1]['init_digests']['backbone']
    assert rows[0]['init_digests']['neck_head'] == rows[1]['init_digests']['neck_head']     # seeded identically

    # resuming with another schedule would mix incomparable rows
    with pytest.raises(ConfigError, match='other schedule'):
        _choose(search_dir, coco_digits, work, '--iters', '5', '--resume')


@pytest.mark.slow
def test_board_of_another_space_than_the_checkpoint(search_dir, coco_digits, tmp_path):
    tiny = get_space(dict(
        name='tiny_det_choice', ops=['k3e3', 'k5e3'], stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
        last_channels=64, head_channels=128,
        stages=[dict(out_channels=16, stride=2, template='k3e3', max_depth=2),
                dict(out_channels=24, stride=2, template='k3e3', max_depth=2)]))
    other = Arch((('k3e3',), ('k5e3',)), 32, 10, tiny)
    s = _board_json(tmp_path / 's', [other])
    with pytest.raises(CheckpointError, match="does not fit the search space 'tiny_det_choice' of .*board.json"):
        _choose(s, coco_digits, tmp_path / 'w', '--checkpoint', str(search_dir / 'epoch_1.pth'))
    # same space, deeper path than the supernet holds
    deep = Arch.from_dict(json.loads((search_dir / 'board.json').read_text())['entries'][0]['arch'])
    deep = deep.with_(stages=deep.stages[:-1] + (deep.stages[-1] * 2,))
    s = _board_json(tmp_path / 's2', [deep])
    with pytest.raises(CheckpointError, match=f'board rank 1: stage 5: path has {2 * DEPTHS[-1]} layers'):
        _choose(s, coco_digits, tmp_path / 'w2', '--checkpoint', str(search_dir / 'epoch_1.pth'))
    assert not (tmp_path / 'w').exists() and not (tmp_path / 'w2').exists()      # refused before writing
