"""mmdet integration: the stack itself, CreamBackbone, RetinaNet configs and tools."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cream_det  # noqa: F401
from cream_det.det import CreamBackbone
from cream_det.engine import load_config, train
from cream_det.errors import ArchError, CheckpointError, ConfigError, DatasetError
from cream_det.models import build
from cream_det.space import ZOO, get_arch
from cream_det.models.checkpoint import save_subnet_checkpoint
from cream_det.models.convert import convert_official

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / 'fixtures' / 'official_cream_14'
DEMO = ROOT / 'configs/retinanet/retinanet_cream-demo_fpn_digits.py'


def _demo_options(coco: Path, **extra):
    root = str(coco) + '/'
    opts = {'data_root': root,
            'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root,
            'val_evaluator.ann_file': root + 'annotations/instances_val.json',
            'test_evaluator.ann_file': root + 'annotations/instances_val.json'}
    opts.update(extra)
    return opts


# ---- the backbone ---------------------------------------------------------------------------------
@pytest.mark.parametrize('name', list(ZOO))
def test_backbone_all_zoo_nets(name):
    bb = CreamBackbone(arch=name).eval()
    outs = bb(torch.zeros(1, 3, 128, 128))
    assert [o.shape[1] for o in outs] == list(bb.out_channels) == [24, 40, 96, 320]
    assert [128 // o.shape[-1] for o in outs] == [4, 8, 16, 32]


def test_frozen_stages_really_freeze():
    bb = CreamBackbone(arch='cream_287', frozen_stages=2)
    bb.train()
    frozen = [bb.net.conv_stem, bb.net.bn1, bb.net.blocks[0], bb.net.blocks[1], bb.net.blocks[2]]
    for m in frozen:
        assert all(not p.requires_grad for p in m.parameters())
        assert all(not mod.training for mod in m.modules())
    assert all(p.requires_grad for p in bb.net.blocks[3].parameters())
    assert bb.net.blocks[3].training
    # BN statistics of frozen stages do not move in a training forward
    before = bb.net.blocks[1][0].bn1.running_mean.clone()
    bb(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, bb.net.blocks[1][0].bn1.running_mean)


def test_norm_eval():
    bb = CreamBackbone(arch='cream_14', norm_eval=True).train()
    assert all(not m.training for m in bb.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_sync_bn_keeps_activation():
    bb = CreamBackbone(arch='cream_14', sync_bn=True)
    kinds = {type(m).__name__ for m in bb.modules()}
    assert 'SyncBatchNormAct' in kinds and 'BatchNormAct2d' not in kinds


def test_sync_bn_reverted_by_mmengine_keeps_its_activation():
    """Without a distributed launch mmengine's Runner reverts SyncBN to BN (revert_sync_batchnorm); for
    timm's SyncBatchNormAct that drops the activation. The next train()/eval() puts it back, on the very
    parameters the optimizer already holds, and the backbone computes what the plain-BN one does."""
    from mmengine.model import revert_sync_batchnorm
    torch.manual_seed(0)
    plain = CreamBackbone(arch='cream_14').eval()
    synced = CreamBackbone(arch='cream_14', sync_bn=True)
    synced.load_state_dict(plain.state_dict())
    reverted = revert_sync_batchnorm(synced)
    x = torch.randn(2, 3, 64, 64)
    torch.nn.Module.train(reverted, False)              # mmengine's revert alone
    with torch.no_grad():
        assert not torch.allclose(reverted(x)[-1], plain(x)[-1], atol=1e-3)
    params = [id(p) for p in reverted.parameters()]
    reverted.eval()
    assert [id(p) for p in reverted.parameters()] == params
    assert 'SyncBatchNormAct' not in {type(m).__name__ for m in reverted.modules()}
    with torch.no_grad():
        for a, b in zip(reverted(x), plain(x)):
            assert torch.equal(a, b)
    reverted.train()                                    # training mode: batch statistics, same function
    plain.train()
    for a, b in zip(reverted(x), plain(x)):
        assert torch.allclose(a, b, atol=1e-6)


def test_loads_converted_official_and_retrain_style_checkpoints(tmp_path):
    conv = convert_official(FIX / 'cream_14_official_layout.pth', tmp_path / 'c14.pth', 'cream_14')
    bb = CreamBackbone(init_cfg=dict(type='Pretrained', checkpoint=str(conv)))   # arch read from the file
    assert bb.arch == get_arch('cream_14')
    bb.init_weights()
    ref = build('cream_14')
    sd = torch.load(conv, weights_only=True)['state_dict']
    assert torch.equal(bb.net.blocks[2][1].conv_dw.weight, sd['blocks.2.1.conv_dw.weight'])
    # an mmengine-style checkpoint whose model holds the subnet under a prefix
    wrapped = {'state_dict': {f'net.{k}': v for k, v in ref.state_dict().items()},
               'meta': {'cream_arch': get_arch('cream_14').to_dict()}}
    torch.save(wrapped, tmp_path / 'retrain.pth')
    bb2 = CreamBackbone(arch='cream_14', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'retrain.pth')))
    bb2.init_weights()
    assert torch.equal(bb2.net.conv_stem.weight, ref.conv_stem.weight)


def test_backbone_bad_input(tmp_path):
    with pytest.raises(ArchError, match='neither a published net'):
        CreamBackbone(arch='cream_999')
    with pytest.raises(ConfigError, match='out_indices'):
        CreamBackbone(arch='cream_14', out_indices=(1, 5))
    with pytest.raises(ConfigError, match='needs arch='):
        CreamBackbone()
    ck = save_subnet_checkpoint(tmp_path / 'c43.pth', build('cream_43').state_dict(), get_arch('cream_43'))
    bb = CreamBackbone(arch='cream_14', init_cfg=dict(type='Pretrained', checkpoint=str(ck)))
    with pytest.raises(CheckpointError, match='embeds arch'):
        bb.init_weights()
    plain = tmp_path / 'plain.pth'
    torch.save({'state_dict': build('cream_43').state_dict()}, plain)
    bb = CreamBackbone(arch='cream_14', init_cfg=dict(type='Pretrained', checkpoint=str(plain)))
    with pytest.raises(CheckpointError, match='does not fit the architecture'):
        bb.init_weights()


# ---- configs ---------------------------------------------------------------------------------------
DET_DIRS = ('retinanet', 'fcos', 'faster_rcnn')
DET_CONFIGS = sorted(p for d in DET_DIRS for p in (ROOT / 'configs' / d).glob('*.py') if not p.name.startswith('_'))


def _narrow_arch():
    """A searched arch of a space with other widths than the paper's: 'auto' must follow it."""
    from cream_det.space import Arch
    from cream_det.space.spec import CREAM_OPS, Op, SearchSpace, StageSpec
    space = SearchSpace(name='narrow_test', ops=CREAM_OPS, last_channels=160, stages=(
        StageSpec(20, 2, Op(3, 4), 2), StageSpec(32, 2, Op(5, 4), 2), StageSpec(48, 2, Op(3, 6), 2),
        StageSpec(64, 1, Op(3, 6), 2), StageSpec(96, 2, Op(5, 6), 2)))
    ops = CREAM_OPS
    return Arch(stages=((ops[0],), (ops[3], ops[1]), (ops[5],), (ops[2],), (ops[4], ops[0])), space=space)


def _plain_mmdet_build(cfg_path, **options):
    """Exactly what mmdet's own tools do: Config.fromfile (custom_imports) + MODELS.build, no launcher."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(str(cfg_path))
    cfg.merge_from_dict(options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return cfg, MODELS.build(cfg.model)


def _lateral_in(det):
    return [m.conv.in_channels for m in det.neck.lateral_convs]


@pytest.mark.parametrize('path', DET_CONFIGS, ids=lambda p: f'{p.parent.name}/{p.stem}')
def test_every_detection_config_builds_under_plain_mmdet(path):
    """No key only our launcher understands: mmdet's registry alone builds every config."""
    opts = {'model.backbone.init_cfg': None}
    if 'searched' in path.name:                 # its arch comes from a checkpoint that does not exist here
        opts['model.backbone.arch'] = 'cream_43'
    cfg, det = _plain_mmdet_build(path, **opts)
    start = cfg.model.neck.get('start_level', 0)
    assert _lateral_in(det) == list(det.backbone.out_channels)[start:]
    assert cfg.custom_imports == dict(imports=['cream_det'], allow_failed_imports=False)
    if '_1x_coco' in path.name:                 # the COCO configs keep mmdet's 1x schedule
        assert cfg.train_cfg.max_epochs == 12
        n = path.name.split('cream-')[1].split('_')[0]
        if n.isdigit():
            assert det.backbone.arch == get_arch(f'cream_{n}')


def test_auto_neck_follows_a_swapped_arch_of_another_space(tmp_path):
    """Swapping only model.backbone.arch (here to a space with other widths) needs nothing else."""
    arch_file = _narrow_arch().save(tmp_path / 'narrow.json')
    cfg, det = _plain_mmdet_build(ROOT / 'configs/fcos/fcos_cream-demo_fpn_digits.py',
                                  **{'model.backbone.arch': str(arch_file)})
    assert list(det.backbone.out_channels) == [24, 32, 64, 160]     # timm rounds 20 up to a multiple of 8
    assert _lateral_in(det) == [32, 64, 160]        # FCOS's FPN starts at its second input
    from cream_det.det.neck import backbone_widths
    assert backbone_widths(cfg) == [24, 32, 64, 160]  # our launcher's config-time check predicts the same
    det.eval()
    with torch.no_grad():
        cls, _, _ = det._forward(torch.zeros(1, 3, 128, 128))
    assert len(cls) == 5 and cls[0].shape[1] == 10


def test_cream_fpn_auto_without_a_backbone_is_clear():
    from cream_det.det.neck import CreamFPN, take_announced_channels
    take_announced_channels()                       # nothing pending from earlier tests
    with pytest.raises(ConfigError, match="in_channels='auto' takes the widths"):
        CreamFPN(in_channels='auto', out_channels=64, num_outs=5)
    CreamBackbone(arch='cream_14')
    neck = CreamFPN(in_channels='auto', out_channels=64, num_outs=5)
    assert neck.in_channels == [24, 40, 96, 320]
    with pytest.raises(ConfigError, match="in_channels='auto' takes the widths"):   # consumed once
        CreamFPN(in_channels='auto', out_channels=64, num_outs=5)


def test_cream_fpn_refuses_features_of_other_widths():
    """A stale announcement (or wrong explicit widths) fails at the first forward with a message."""
    from cream_det.det.neck import CreamFPN
    neck = CreamFPN(in_channels=[24, 40, 96, 320], out_channels=64, num_outs=5)
    feats = tuple(torch.zeros(1, c, s, s) for c, s in ((64, 32), (128, 16), (256, 8), (512, 4)))
    with pytest.raises(ConfigError, match=r'backbone gives \[64, 128, 256, 512\]'):
        neck(feats)


def test_neck_channels_mistakes_are_clear_in_our_launcher():
    from cream_det.det.neck import check_neck_channels
    cfg = load_config(DEMO, {'model.neck.in_channels': [1, 2, 3, 4]})
    with pytest.raises(ConfigError, match=r"gives \[24, 40, 96, 320\]"):
        check_neck_channels(cfg)
    cfg = load_config(DEMO, {'model.neck.type': 'FPN'})         # 'auto' on mmdet's own FPN
    with pytest.raises(ConfigError, match="model.neck.type='CreamFPN'"):
        check_neck_channels(cfg)
    check_neck_channels(load_config(DEMO, {'model.neck.in_channels': [24, 40, 96, 320]}))
    check_neck_channels(load_config(DEMO))


def test_coco_annotation_missing_or_malformed(coco_digits, tmp_path):
    cfg = load_config(DEMO, _demo_options(tmp_path / 'nowhere'), str(tmp_path / 'w'))
    with pytest.raises(DatasetError, match='annotation file .* not found'):
        train(cfg)
    bad = tmp_path / 'coco'
    (bad / 'annotations').mkdir(parents=True)
    (bad / 'train').mkdir()
    (bad / 'val').mkdir()
    (bad / 'annotations' / 'instances_train.json').write_text('{"images": [')
    cfg = load_config(DEMO, _demo_options(bad), str(tmp_path / 'w'))
    with pytest.raises(DatasetError, match='instances_train.json'):
        train(cfg)


# ---- the mmdet stack itself, end to end ---------------------------------------------------------------
def _write_cfg(tmp_path, text):
    p = tmp_path / 'cfg.py'
    p.write_text(text)
    return p


def test_mmdet_own_retinanet_trains_and_evaluates(coco_digits, tmp_path):
    """mmdet's RetinaNet (its own R50 config via mmdet::) trains one iteration and runs COCO eval."""
    root = str(coco_digits) + '/'
    cfg_path = _write_cfg(tmp_path, f'''
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=10))
meta = dict(classes=tuple(str(d) for d in range(10)))
pipe = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(128, 128), keep_ratio=True), dict(type='PackDetInputs')]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}', metainfo=meta, ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=pipe))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}', metainfo=meta, ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=pipe))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='{root}annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1, val_interval=1)
param_scheduler = []
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1))
''')
    runner = train(load_config(cfg_path, work_dir=str(tmp_path / 'w')))
    assert runner.iter == 1
    metrics = runner.val_loop.run()          # COCO evaluation through pycocotools
    assert 'coco/bbox_mAP' in metrics or metrics == {}


@pytest.fixture(scope='module')
def coco_digits_demo(tmp_path_factory):
    """The demo's own size (200 train / 50 val canvases): enough for RetinaNet to learn in minutes."""
    from cream_det.data import make_coco_digits
    return make_coco_digits(tmp_path_factory.mktemp('det') / 'coco', num_train=200, num_val=50, seed=0)


@pytest.mark.slow
def test_demo_retinanet_learns_and_test_tool_agrees(coco_digits_demo, tmp_path):
    """Trained demo RetinaNet beats the untrained one clearly; tools/test.py gives the same mAP."""
    from cream_det.engine import test
    work = tmp_path / 'w'
    opts = _demo_options(coco_digits_demo, **{'train_cfg.max_epochs': 12, 'train_cfg.val_interval': 12})
    untrained = tmp_path / 'untrained.pth'
    cfg = load_config(DEMO, opts, str(work))
    train(cfg)
    trained_map = _logged_metric(work, 'coco/bbox_mAP')
    torch.save({'state_dict': _fresh_detector(cfg).state_dict()}, untrained)
    # mmdet's CocoMetric returns no metrics at all when a model detects nothing: that is an mAP of 0
    untrained_map = test(load_config(DEMO, opts, str(tmp_path / 'u')), untrained).get('coco/bbox_mAP', 0.0)
    assert trained_map > max(0.02, 3 * untrained_map), (trained_map, untrained_map)
    out = tmp_path / 'm.json'
    r = subprocess.run([sys.executable, str(ROOT / 'tools/test.py'), str(DEMO), str(work / 'epoch_12.pth'),
                        '--work-dir', str(tmp_path / 't'), '--out', str(out), '--cfg-options',
                        *[f'{k}={v!r}' for k, v in opts.items()]], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(out.read_text())['coco/bbox_mAP'] == pytest.approx(trained_map, abs=1e-6)


def _logged_metric(work: Path, key: str) -> float:
    """The value the trainer's own end-of-training evaluation logged, read from the run's text log
    (vis_data/scalars.json may belong to an earlier Runner's visualizer in the same process)."""
    import re
    values = [float(m.group(1)) for f in sorted(work.glob('*/*.log'))
              for m in re.finditer(re.escape(key) + r': (-?[0-9.]+)', f.read_text())]
    assert values, f'{key} was never logged in {work}'
    return values[-1]


def _fresh_detector(cfg):
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    det = MODELS.build(cfg.model)
    det.init_weights()
    return det


def _torchrun(args, tmp_path, port):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                           f'--master_port={port}', *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=900)


@pytest.mark.dist
def test_two_process_retinanet_ranks_agree(coco_digits, tmp_path):
    work = tmp_path / 'w'
    r = _torchrun([str(ROOT / 'tests/scripts/dist_train_check.py'), str(DEMO), str(work), '2',
                   json.dumps(_demo_options(coco_digits))], tmp_path, 29611)
    assert r.returncode == 0, r.stderr[-3000:]
    digests = [json.loads((work / f'digest_rank{i}.json').read_text()) for i in range(2)]
    assert all(d['world'] == 2 for d in digests)
    assert digests[0]['digest'] == digests[1]['digest']


@pytest.mark.dist
def test_dist_train_sh_two_processes(coco_digits, tmp_path):
    opts = _demo_options(coco_digits, **{'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
                                         'default_hooks.checkpoint.interval': 1})
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT='29621', PYTHON=sys.executable)
    r = subprocess.run([str(ROOT / 'tools/dist_train.sh'), str(DEMO), '2', '--work-dir', str(tmp_path / 'w'),
                        '--cfg-options', *[f'{k}={v!r}' for k, v in opts.items()]],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / 'w' / 'epoch_1.pth').is_file()
    assert 'Epoch(val) [1]' in r.stdout + r.stderr


@pytest.mark.slow
@pytest.mark.parametrize('cfg_name, score_thr', [('fcos/fcos_cream-demo_fpn_digits.py', 'model.test_cfg.score_thr'),
                                                 ('faster_rcnn/faster-rcnn_cream-demo_fpn_digits.py',
                                                  'model.test_cfg.rcnn.score_thr')])
def test_demo_fcos_and_faster_rcnn_train_and_evaluate(coco_digits, tmp_path, cfg_name, score_thr):
    """One epoch (5 iterations) on the demo data, then COCO evaluation of every kept box."""
    import math
    import re
    work = tmp_path / 'w'
    # score_thr 0: after 5 iterations scores are near the prior, and mmdet reports no metric for no boxes
    opts = _demo_options(coco_digits, **{'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
                                         'default_hooks.logger.interval': 1, score_thr: 0.0})
    runner = train(load_config(ROOT / 'configs' / cfg_name, opts, str(work)))
    assert runner.iter == 5
    log = ''.join(f.read_text() for f in work.glob('*/*.log'))
    losses = [float(x) for x in re.findall(r' loss: ([-0-9.naif]+)', log)]
    assert len(losses) == 5 and all(math.isfinite(x) for x in losses), losses
    assert 0.0 <= _logged_metric(work, 'coco/bbox_mAP') <= 1.0


def test_sync_bn_options_build_under_plain_mmdet():
    """SyncBN options build under plain mmdet: the backbone's sync_bn (docs/detection.md's recipe) and,
    where a user gives neck and head a norm_cfg (which adds BN layers to RetinaHead: another detector,
    as docs/detection.md warns), every such layer is a SyncBatchNorm."""
    sync = dict(type='SyncBN', requires_grad=True)
    _, det = _plain_mmdet_build(DEMO, **{'model.backbone.sync_bn': True, 'model.neck.norm_cfg': sync,
                                         'model.bbox_head.norm_cfg': sync})
    kinds = [type(m).__name__ for m in det.modules()]
    assert 'SyncBatchNormAct' in kinds and 'BatchNormAct2d' not in kinds           # backbone
    assert kinds.count('SyncBatchNorm') >= len(det.neck.fpn_convs) + 2 * det.bbox_head.stacked_convs


def test_detector_checkpoint_of_another_backbone_arch_is_refused(tmp_path):
    """mmengine loads detector checkpoints non-strictly (load_from, tools/test.py, mmdet's test.py): a
    test run without the training's backbone options used to load only the fitting tensors and report a
    wrong mAP after a warning. The backbone now refuses; strict_load=False restores the partial load."""
    from mmengine.runner import load_checkpoint
    opts = {'model.backbone.init_cfg': None, 'model.backbone.arch': 'cream_43'}
    _, trained = _plain_mmdet_build(DEMO, **opts)
    path = tmp_path / 'det.pth'
    torch.save({'state_dict': trained.state_dict(), 'meta': {}}, path)

    _, same = _plain_mmdet_build(DEMO, **opts)
    load_checkpoint(same, str(path), strict=False)
    for (k, a), b in zip(trained.state_dict().items(), same.state_dict().values()):
        assert torch.equal(a, b), k

    _, other = _plain_mmdet_build(DEMO, **{**opts, 'model.backbone.arch': 'cream_14'})
    with pytest.raises(ConfigError, match=r"do not fit this CreamBackbone \(arch cream_14\).*--cfg-options"):
        load_checkpoint(other, str(path), strict=False)

    _, lenient = _plain_mmdet_build(DEMO, **{**opts, 'model.backbone.arch': 'cream_14',
                                             'model.backbone.strict_load': False})
    load_checkpoint(lenient, str(path), strict=False)       # mmengine's partial load, as before
    assert torch.equal(lenient.bbox_head.retina_cls.weight, trained.bbox_head.retina_cls.weight)

    head_only = {k: v for k, v in trained.state_dict().items() if not k.startswith('backbone.')}
    torch.save({'state_dict': head_only}, tmp_path / 'head.pth')
    load_checkpoint(other, str(tmp_path / 'head.pth'), strict=False)   # no backbone weights: mmengine's call
