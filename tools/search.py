#!/usr/bin/env python
"""Supernet search: train a weight-sharing supernet with a strategy (cream, spos, dna, mixpath), then pick an arch.

    python tools/search.py configs/search/cream_demo.py            # -> work dir: board.json, arch.json, board.png
    tools/dist_search.sh configs/search/cream_imagenet_0-600.py 8

Cream's arch is the best path of its prioritized board (the paper's choice); SPOS's comes from an
evolutionary search over the trained supernet (``final_pick='evolution'``, resumable); DNA's is the
exact best combination of per-stage candidates scored against its teacher (``final_pick='dna'``,
docs/dna.md); MixPath's is the best arch in range on its NSGA-II Pareto front (``final_pick='pareto'``,
docs/mixpath.md). With ``model.latency_table`` and ``model.latency_range`` every strategy but MixPath also
keeps its pick inside a range of predicted milliseconds (docs/latency.md; configs/search/cream_demo_latency.py).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.engine.cli import parse_and_load, train_parser  # noqa: E402
from cream_det.utils.cli import run_cli  # noqa: E402


def main(argv=None) -> None:
    from cream_det.engine.search_run import run_search
    args, cfg = parse_and_load(train_parser(__doc__), argv)
    run_search(cfg, resume=args.resume, amp=args.amp)


if __name__ == '__main__':
    run_cli(main)
