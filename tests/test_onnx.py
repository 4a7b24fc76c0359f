"""ONNX export (tools/export_onnx.py, cream_det.det.export): onnxruntime equals PyTorch.

Needs the ``deploy`` extra (onnx, onnxruntime); the environment step installs it for the tests.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import onnx  # (the deploy extra; the environment step installs it for the tests)
import onnxruntime  # noqa: F401
import torch

import cream_det  # noqa: F401
from cream_det.engine import load_config
from cream_det.errors import CheckpointError, ConfigError
from cream_det.models import build
from cream_det.models.checkpoint import save_subnet_checkpoint
from cream_det.space import Arch, get_arch


ROOT = Path(__file__).resolve().parents[1]
RETINA_DEMO = ROOT / 'configs/retinanet/retinanet_cream-demo_fpn_digits.py'
FCOS_SEARCHED = ROOT / 'configs/fcos/fcos_cream-searched_fpn_gn-head_1x_coco.py'
TOL = 1e-4


def _searched_arch() -> Arch:
    """A searched-looking arch of the paper's space: uneven depths, mixed ops (not a published net)."""
    ops = get_arch('cream_14').space.ops
    return Arch(stages=((ops[1],), (ops[4], ops[0]), (ops[5], ops[2], ops[3]), (ops[0],), (ops[3], ops[1])))


def _detector_checkpoint(cfg_path, path, seed=0, **options):
    """A trained-detector stand-in: the config's detector with random weights, saved as mmdet does."""
    from cream_det.det.export import build_detector
    torch.manual_seed(seed)
    det = build_detector(load_config(cfg_path, options))
    for m in det.modules():       # non-trivial BN statistics, so a wrong BN export would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    torch.save({'state_dict': det.state_dict(), 'meta': {}}, path)
    return det


def _export_and_compare(cfg_path, ckpt, out, shape, backbone_only=False, **options):
    from cream_det.det.export import TensorGraph, build_detector, compare_onnxruntime, export_onnx, load_checkpoint
    det = build_detector(load_config(cfg_path, options))
    load_checkpoint(det, ckpt, backbone_only=backbone_only)
    graph = TensorGraph(det, backbone_only=backbone_only)
    info = export_onnx(graph, out, shape)
    torch.manual_seed(1)
    return info, compare_onnxruntime(graph, out, torch.randn(1, 3, *shape)), det


def test_published_net_retinanet_onnx_equals_pytorch(tmp_path):
    ckpt = tmp_path / 'det.pth'
    ref = _detector_checkpoint(RETINA_DEMO, ckpt)
    info, diff, det = _export_and_compare(RETINA_DEMO, ckpt, tmp_path / 'det.onnx', (128, 160))
    assert diff <= TOL
    # the loaded weights are the checkpoint's (a fresh init would not reproduce them)
    assert torch.equal(det.bbox_head.retina_cls.weight, ref.bbox_head.retina_cls.weight)
    assert info['outputs'] == [f'cls_score_{i}' for i in range(5)] + [f'bbox_pred_{i}' for i in range(5)]
    info, diff, _ = _export_and_compare(RETINA_DEMO, ckpt, tmp_path / 'bb.onnx', (128, 160), backbone_only=True)
    assert diff <= TOL and info['outputs'] == ['feat_1', 'feat_2', 'feat_3', 'feat_4']


def test_searched_arch_fcos_onnx_equals_pytorch(tmp_path):
    arch_file = _searched_arch().save(tmp_path / 'arch.json')
    opts = {'model.backbone.arch': str(arch_file), 'model.backbone.init_cfg': None,
            'model.neck.out_channels': 64, 'model.bbox_head.in_channels': 64, 'model.bbox_head.feat_channels': 64,
            'model.bbox_head.stacked_convs': 2}
    ckpt = tmp_path / 'det.pth'
    _detector_checkpoint(FCOS_SEARCHED, ckpt, seed=3, **opts)
    info, diff, det = _export_and_compare(FCOS_SEARCHED, ckpt, tmp_path / 'fcos.onnx', (96, 128), **opts)
    assert det.backbone.arch == _searched_arch()
    assert diff <= TOL
    assert info['outputs'][-1] == 'centerness_4'


def _tool(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, str(ROOT / 'tools/export_onnx.py'), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.slow
def test_export_tool_backbone_only_from_imagenet_checkpoint_and_bad_input(tmp_path):
    """The command line: a classification checkpoint exports its backbone; mistakes give one line."""
    c14 = save_subnet_checkpoint(tmp_path / 'c14.pth', build('cream_14').state_dict(), get_arch('cream_14'))
    r = _tool(RETINA_DEMO, c14, tmp_path / 'bb.onnx', '--backbone-only', '--shape', 64, 96, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    diff = float(r.stdout.split('max |onnxruntime - PyTorch| on a random input: ')[1].split()[0])
    assert diff <= TOL and (tmp_path / 'bb.onnx').is_file()
    # a checkpoint of another arch
    c43 = save_subnet_checkpoint(tmp_path / 'c43.pth', build('cream_43').state_dict(), get_arch('cream_43'))
    r = _tool(RETINA_DEMO, c43, tmp_path / 'x.onnx', '--backbone-only', cwd=tmp_path)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.startswith('error: ') and 'embeds arch' in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # a config whose backbone is not a CreamBackbone
    resnet = tmp_path / 'resnet.py'
    resnet.write_text("_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'\n")
    r = _tool(resnet, c14, tmp_path / 'y.onnx', cwd=tmp_path)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert 'not a CreamBackbone' in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / 'x.onnx').exists() and not (tmp_path / 'y.onnx').exists()


def test_wrong_checkpoints_are_refused(tmp_path):
    """Engine-free: a detector checkpoint of another arch (no arch embedded: caught by shapes), and a
    classification checkpoint offered for a full export."""
    from cream_det.det.export import build_detector, load_checkpoint
    det43 = build_detector(load_config(RETINA_DEMO, {'model.backbone.arch': 'cream_43'}))
    torch.save({'state_dict': det43.state_dict()}, tmp_path / 'd43.pth')
    det14 = build_detector(load_config(RETINA_DEMO))
    with pytest.raises(CheckpointError, match='does not fit the architecture.*config builds'):
        load_checkpoint(det14, tmp_path / 'd43.pth')
    c14 = save_subnet_checkpoint(tmp_path / 'c14.pth', build('cream_14').state_dict(), get_arch('cream_14'))
    with pytest.raises(CheckpointError, match='--backbone-only'):
        load_checkpoint(det14, c14)
    assert load_checkpoint(det14, c14, backbone_only=True) == 'classification'
    with pytest.raises(ConfigError, match='multiples of 32'):
        from cream_det.det.export import TensorGraph, export_onnx
        export_onnx(TensorGraph(det14), tmp_path / 'z.onnx', (100, 128))


def test_faster_rcnn_exports_up_to_the_rpn_head(tmp_path):
    cfg = ROOT / 'configs/faster_rcnn/faster-rcnn_cream-demo_fpn_digits.py'
    ckpt = tmp_path / 'det.pth'
    _detector_checkpoint(cfg, ckpt, seed=5)
    info, diff, det = _export_and_compare(cfg, ckpt, tmp_path / 'frcnn.onnx', (128, 128))
    assert diff <= TOL
    # RPN: one objectness map (3 anchors) and one box map (4 x 3) per level, P2..P6
    assert info['outputs'] == [f'cls_score_{i}' for i in range(5)] + [f'bbox_pred_{i}' for i in range(5)]
    graph = onnx.load(str(tmp_path / 'frcnn.onnx')).graph
    shapes = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output]
    assert shapes[0] == [1, 3, 32, 32] and shapes[5] == [1, 12, 32, 32]
