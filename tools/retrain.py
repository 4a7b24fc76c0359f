#!/usr/bin/env python
"""Retrain a published or searched Cream subnet from scratch (ImageNet, or the digits demo).

    python tools/retrain.py configs/retrain/cream-287_imagenet.py
    python tools/retrain.py configs/retrain/searched_imagenet.py --arch work_dirs/search/arch.json
    python tools/retrain.py configs/retrain/demo_digits.py --cfg-options train_cfg.max_epochs=5
    tools/dist_retrain.sh CONFIG GPUS [args]        # torchrun; gloo on a machine without CUDA

--arch replaces the config's network and its input resolution; when resuming it must name the
network the checkpoint was trained for. Checkpoints embed the arch, so `tools/test.py CKPT
--data-root DIR` and the detection configs need only the file.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.engine.cli import parse_and_load, train_parser  # noqa: E402
from cream_det.utils.cli import run_cli  # noqa: E402


def main(argv=None) -> None:
    p = train_parser(__doc__)
    p.add_argument('--arch', metavar='NAME|FILE',
                   help='published net (cream_14 ... cream_604) or arch file; overrides the config\'s arch')
    args, cfg = parse_and_load(p, argv)
    from cream_det.engine import train
    from cream_det.engine.retrain import apply_arch, check_resume_arch, config_arch, fill_input_size
    if args.arch:
        apply_arch(cfg, args.arch)
    config_arch(cfg)                # a clear error for a missing/unknown arch before the Runner starts
    fill_input_size(cfg)
    if args.resume:
        check_resume_arch(cfg, args.resume)
    train(cfg, resume=args.resume, amp=args.amp)


if __name__ == '__main__':
    run_cli(main)
