#!/usr/bin/env python
"""Train from an mmengine config: RetinaNet detection, subnet retraining or a supernet search.

    python tools/train.py configs/retinanet/retinanet_cream-287_fpn_1x_coco.py
    tools/dist_train.sh CONFIG GPUS [args]          # torchrun; gloo on a machine without CUDA
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.utils.cli import parse_and_load, run_cli, train_parser  # noqa: E402


def main(argv=None) -> None:
    from cream_det.engine import train
    args, cfg = parse_and_load(train_parser(__doc__), argv)
    train(cfg, resume=args.resume, amp=args.amp)


if __name__ == '__main__':
    run_cli(main)
