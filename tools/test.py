#!/usr/bin/env python
"""Evaluate a checkpoint with the config's test loop and metric (COCO bbox mAP, top-1/top-5).

    python tools/test.py configs/retinanet/retinanet_cream-demo_fpn_digits.py work_dirs/x/epoch_12.pth
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.utils.cli import _KeyValue, run_cli  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='mmengine config file')
    p.add_argument('checkpoint', help='checkpoint to evaluate')
    p.add_argument('--work-dir', help='where the test log goes (default work_dirs/<config name>)')
    p.add_argument('--out', help='also write the metrics as JSON to this file')
    p.add_argument('--cfg-options', nargs='+', action=_KeyValue, default={}, metavar='KEY=VALUE')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default=None, help=argparse.SUPPRESS)
    p.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    from cream_det.engine import load_config, test
    from cream_det.utils.io import atomic_write_text
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    metrics = test(cfg, args.checkpoint)
    metrics = {k: float(v) for k, v in metrics.items()}
    print(json.dumps(metrics, indent=2))
    if args.out:
        atomic_write_text(args.out, json.dumps(metrics, indent=2) + '\n')


if __name__ == '__main__':
    run_cli(main)
