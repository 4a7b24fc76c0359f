#!/usr/bin/env python
r"""Kendall tau between a trained supernet's inherited accuracy and stand-alone accuracy of archs.

    python tools/rank_archs.py configs/search/cream_demo.py work_dirs/cream_demo/epoch_5.pth \
        --num-archs 8 --epochs 3 --out work_dirs/cream_demo/ranking.json

Archs are drawn inside the search's MACs range (seeded), each trained from scratch for --epochs on
the search's training data and evaluated on its held-out data (search_val_dataloader).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.engine.cli import add_standalone_amp, check_amp  # noqa: E402
from cream_det.utils.cli import KeyValue, run_cli  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint', help='a search checkpoint (its supernet weights are used)')
    p.add_argument('--num-archs', type=int, default=8)
    p.add_argument('--epochs', type=int, default=2, help='stand-alone training epochs per arch')
    p.add_argument('--train-batches', type=int, default=None, help='cap on training batches per epoch')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', help='write the result as JSON here')
    p.add_argument('--cfg-options', nargs='+', action=KeyValue, default={}, metavar='KEY=VALUE')
    add_standalone_amp(p)
    args = p.parse_args(argv)
    check_amp(args)

    from cream_det.engine import load_config
    from cream_det.engine.run import build_runner
    from cream_det.engine.supernet_search import load_search_checkpoint, search_model, unpack_batch
    from cream_det.errors import ConfigError
    from cream_det.search.evaluate import take_batches
    from cream_det.search.ranking_tool import rank_correlation
    from cream_det.space import ArchSampler
    from cream_det.utils.io import atomic_write_text

    cfg = load_config(args.config, args.cfg_options, work_dir=str(Path(args.checkpoint).parent / 'ranking'))
    if cfg.get('search_val_dataloader') is None:
        raise ConfigError(f'{args.config}: needs search_val_dataloader (held-out images)')
    runner = build_runner(cfg)
    model = search_model(runner.model)
    load_search_checkpoint(model, args.checkpoint, strategy_state=False)
    sn = model.supernet

    def unpack(data):
        return unpack_batch(model.data_preprocessor(data, False))
    dev = next(sn.parameters()).device      # the Runner put the supernet on the GPU when there is one
    train = take_batches(runner.build_dataloader(cfg.train_dataloader), args.train_batches, unpack, dev)
    val = take_batches(runner.build_dataloader(cfg.search_val_dataloader), None, unpack, dev)
    codes = ArchSampler(sn.space, sn.resolution, sn.num_classes, depths=sn.depths, macs_range=model.macs_range,
                        seed=args.seed, max_paths=sn.max_paths, latency_table=model.latency_table,
                        latency_range=model.latency_range).sample_codes(args.num_archs)
    res = rank_correlation(sn, codes, train, val, epochs=args.epochs, amp=args.amp)
    for a, i, s in zip(res['archs'], res['inherited_top1'], res['standalone_top1']):
        print(f'{a["hash"]}  inherited {i:6.2f}  stand-alone {s:6.2f}')
    print(f'kendall tau: {res["kendall_tau"]:.3f} over {len(codes)} archs')
    if args.out:
        atomic_write_text(args.out, json.dumps(res, indent=2) + '\n')


if __name__ == '__main__':
    run_cli(main)
