#!/usr/bin/env python
"""Train from an mmengine config: detection (RetinaNet, FCOS, Faster R-CNN), subnet retraining or a
supernet search. The detection configs run unchanged under mmdet's own tools/train.py as well.

    python tools/train.py configs/retinanet/retinanet_cream-287_fpn_1x_coco.py
    python tools/train.py configs/fcos/fcos_cream-287_fpn_gn-head_1x_coco.py --amp     # CUDA only
    tools/dist_train.sh CONFIG GPUS [args]          # torchrun; gloo on a machine without CUDA
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.engine.cli import parse_and_load, train_parser  # noqa: E402
from cream_det.utils.cli import run_cli  # noqa: E402


def main(argv=None) -> None:
    from cream_det.engine import train
    args, cfg = parse_and_load(train_parser(__doc__), argv)
    train(cfg, resume=args.resume, amp=args.amp)


if __name__ == '__main__':
    run_cli(main)
