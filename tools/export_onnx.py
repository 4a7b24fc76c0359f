#!/usr/bin/env python
"""Export a Cream detector's tensor graph (backbone + neck + head, mmdet's mode='tensor') to ONNX.

    python tools/export_onnx.py configs/retinanet/retinanet_cream-287_fpn_1x_coco.py work_dirs/x/epoch_12.pth det.onnx
    python tools/export_onnx.py CONFIG CHECKPOINT backbone.onnx --backbone-only
    python tools/export_onnx.py CONFIG cream_287.pth backbone.onnx --backbone-only   # ImageNet weights

The graph's input is the preprocessed batch (normalised with the config's data_preprocessor
mean/std, RGB, padded to a multiple of 32) of static shape 1x3xHxW (--shape H W, default 800 1344,
the padded 1333x800 test scale). Outputs are the head's raw maps per FPN level (cls_score_0..,
bbox_pred_0.., centerness_0.. for FCOS); box decoding and NMS are left to the deployment runtime.
Two-stage detectors (Faster R-CNN) export up to the RPN head. When onnxruntime is installed
(pip install -e .[deploy]) the export is checked against PyTorch on a random input.
Needs: pip install -e .[deploy]   (onnx, onnxruntime)
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.utils.cli import KeyValue, run_cli  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='mmengine detection config with a CreamBackbone')
    p.add_argument('checkpoint', help='detector checkpoint (or, with --backbone-only, a classification one)')
    p.add_argument('out', help='the .onnx file to write')
    p.add_argument('--backbone-only', action='store_true', help='export the CreamBackbone features only')
    p.add_argument('--shape', nargs=2, type=int, default=None, metavar=('H', 'W'),
                   help='static input size, multiples of 32 (default 800 1344)')
    p.add_argument('--opset', type=int, default=17)
    p.add_argument('--no-check', action='store_true', help='skip the onnxruntime-vs-PyTorch check')
    p.add_argument('--cfg-options', nargs='+', action=KeyValue, default={}, metavar='KEY=VALUE')
    return p


def main(argv=None) -> None:
    import torch
    from cream_det.det.export import (DEFAULT_SHAPE, TensorGraph, build_detector, compare_onnxruntime,
                                      export_onnx, load_checkpoint)
    from cream_det.engine import load_config
    from cream_det.errors import ConfigError
    from cream_det.models.checkpoint import embedded_arch, read_checkpoint
    args = _parser().parse_args(argv)
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError('the onnx package is not installed: pip install -e .[deploy]') from None
    cfg = load_config(args.config, args.cfg_options)
    ckpt_arch = embedded_arch(read_checkpoint(args.checkpoint), args.checkpoint)
    model = build_detector(cfg, ckpt_arch)
    kind = load_checkpoint(model, args.checkpoint, backbone_only=args.backbone_only)
    graph = TensorGraph(model, backbone_only=args.backbone_only)
    info = export_onnx(graph, args.out, args.shape or DEFAULT_SHAPE, args.opset)
    what = 'backbone' if args.backbone_only else ('backbone+neck+RPN head' if graph.two_stage
                                                  else 'backbone+neck+head')
    print(f'{info["path"]}: {what} of {model.backbone.arch} from a {kind} checkpoint, '
          f'input {"x".join(map(str, info["input_shape"]))}, outputs {", ".join(info["outputs"])}')
    if not args.no_check:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print('onnxruntime not installed: output check skipped')
            return
        torch.manual_seed(0)
        diff = compare_onnxruntime(graph, info['path'], torch.randn(*info['input_shape']))
        print(f'max |onnxruntime - PyTorch| on a random input: {diff:.3g}')


if __name__ == '__main__':
    run_cli(main)
