#!/usr/bin/env python
"""Write the embedded demo datasets: real handwritten digits in ImageNet and COCO layouts.

Why: lets every stage (supernet training, retraining, detection) run on a machine without
ImageNet/COCO or network access, through the same loaders the real data uses.

    python tools/make_demo_data.py data/demo                 # data/demo/imagenet + data/demo/coco
    python tools/make_demo_data.py data/demo/coco --kind coco --num-train 500 --force
"""
import argparse
import sys
from pathlib import Path

try:
    import cream_det  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.data import make_coco_digits, make_imagenet_digits, validate_coco  # noqa: E402
from cream_det.data._atomic import check_output_dir  # noqa: E402
from cream_det.errors import CreamDetError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir', type=Path, help='output directory')
    parser.add_argument('--kind', choices=('imagenet', 'coco', 'all'), default='all',
                        help='which dataset; "all" writes OUT_DIR/imagenet and OUT_DIR/coco')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--size', type=int, default=64, help='classification image side (px)')
    parser.add_argument('--max-per-class', type=int, default=None,
                        help='cap on classification images per class (default: all ~180)')
    parser.add_argument('--canvas-size', type=int, default=128, help='detection image side (px)')
    parser.add_argument('--num-train', type=int, default=200, help='detection train images')
    parser.add_argument('--num-val', type=int, default=50, help='detection val images')
    parser.add_argument('--force', action='store_true', help='replace non-empty output directories')
    return parser.parse_args(argv)


def _targets(args: argparse.Namespace) -> dict[str, Path]:
    if args.kind == 'all':
        return {'imagenet': args.out_dir / 'imagenet', 'coco': args.out_dir / 'coco'}
    return {args.kind: args.out_dir}


def _imagenet(args: argparse.Namespace, out: Path) -> str:
    root = make_imagenet_digits(out, size=args.size, seed=args.seed,
                                max_per_class=args.max_per_class, force=args.force)
    counts = {s: sum(1 for _ in (root / s).glob('*/*.JPEG')) for s in ('train', 'val')}
    return f'imagenet: 10 classes, {counts["train"]} train / {counts["val"]} val images -> {root}'


def _coco(args: argparse.Namespace, out: Path) -> str:
    root = make_coco_digits(out, num_train=args.num_train, num_val=args.num_val,
                            canvas_size=args.canvas_size, seed=args.seed, force=args.force)
    parts = []
    for split in ('train', 'val'):
        summary = validate_coco(root / 'annotations' / f'instances_{split}.json', root / split)
        parts.append(f'{summary["num_images"]} {split} images / {summary["num_annotations"]} boxes')
    return f'coco: 10 categories, {", ".join(parts)} -> {root}'


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    builders = {'imagenet': _imagenet, 'coco': _coco}
    try:
        targets = _targets(args)
        for out in targets.values():  # refuse before writing anything, not halfway through
            check_output_dir(out, args.force)
        for kind, out in targets.items():
            print(builders[kind](args, out))
    except CreamDetError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('interrupted; no partial dataset was left behind', file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
