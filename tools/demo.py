#!/usr/bin/env python
"""The main job on the embedded data (``make demo``).

What runs today: the embedded datasets are written in the real formats (ImageNet folders and
COCO json), every published net is built through timm and measured, and a random arch is
sampled inside a MACs budget. The search → retrain → RetinaNet stages join this script as they land.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.utils.cli import run_cli  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', default='work_dirs/demo', help='where everything is written')
    args = p.parse_args(argv)
    work = Path(args.work_dir)
    t0 = time.time()

    from cream_det.data import make_coco_digits, make_imagenet_digits, validate_coco
    data = work / 'data'
    print(f'[1/3] embedded datasets -> {data}')
    imnet = data / 'imagenet'
    coco = data / 'coco'
    if not (imnet / 'train').is_dir():
        make_imagenet_digits(imnet, size=64, seed=0)
    if not (coco / 'annotations').is_dir():
        make_coco_digits(coco, num_train=200, num_val=50, seed=0)
    n_cls = sum(1 for _ in (imnet / 'train').glob('*/*.JPEG'))
    summary = validate_coco(coco / 'annotations' / 'instances_val.json', coco / 'val')
    print(f'      ImageNet layout: {n_cls} train images; COCO: {summary["num_images"]} val images, '
          f'{summary["num_annotations"]} boxes (validated)')

    import timm
    import torch

    from cream_det.models import ZOO, get_arch
    print('[2/3] published Cream nets, built by timm and measured')
    print(f'      {"name":<10} {"res":>4} {"MACs":>10} {"params":>10} {"top-1":>6}')
    for name, entry in ZOO.items():
        arch = get_arch(name)
        model = timm.create_model(name).eval()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, arch.resolution, arch.resolution))
        assert out.shape == (1, 1000)
        print(f'      {name:<10} {arch.resolution:>4} {arch.macs / 1e6:>9.1f}M {arch.params / 1e6:>9.2f}M '
              f'{entry.top1:>6.1f}')

    from cream_det.space import ArchSampler
    print('[3/3] an arch sampled inside 300–400M MACs (4 layers per stage, 224 px)')
    arch = ArchSampler(resolution=224, depths=(4,) * 5, macs_range=(300e6, 400e6), seed=0).sample()
    path = arch.save(work / 'sampled_arch.json')
    print(f'      {arch}  {arch.macs / 1e6:.1f}M MACs -> {path}')
    print(f'demo finished in {time.time() - t0:.0f} s. Search, retraining and RetinaNet transfer are '
          f'added to this demo as they land (see README "Status").')


if __name__ == '__main__':
    run_cli(main)
