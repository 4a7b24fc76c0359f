#!/usr/bin/env python
"""RetinaNet training-iteration time and peak memory: cream_287 backbone vs mmdet's MobileNetV2 and ResNet-18.

    python benchmarks/retinanet_iter.py [--size 512 | --size 1333 800] [--batch 2] [--iters 5]
                                        [--device cpu|cuda] [--amp]

Same detector (mmdet's RetinaNet 1x config, FPN, 80 classes), same input size and batch; only the
backbone differs. Each variant runs in its own process so its peak memory is its own (CPU: peak RSS;
CUDA: torch.cuda.max_memory_allocated). ``--size W H`` gives a non-square input (mmdet's 1x
schedule trains at 1333x800); ``--amp`` (CUDA only) runs each iteration under fp16 autocast with a
dynamic loss scale, as mmengine's ``AmpOptimWrapper`` does.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BACKBONES = {
    'cream_287': dict(backbone=dict(_delete_=True, type='CreamBackbone', arch='cream_287', out_indices=(1, 2, 3, 4)),
                      neck=dict(in_channels=[24, 40, 96, 320])),
    'mobilenetv2': dict(backbone=dict(_delete_=True, type='mmdet.MobileNetV2', out_indices=(2, 4, 6)),
                        neck=dict(in_channels=[32, 96, 320], start_level=0)),
    'resnet18': dict(backbone=dict(depth=18, init_cfg=None), neck=dict(in_channels=[64, 128, 256, 512])),
}


def one(name: str, size: tuple, batch: int, iters: int, device: str, amp: bool = False) -> dict:
    import resource

    import torch
    from mmengine.config import Config
    from mmengine.structures import InstanceData
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    import cream_det  # noqa: F401
    torch.manual_seed(0)
    import tempfile
    with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:   # mmdet:: resolves via _base_
        f.write("_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'\n")
    cfg = Config.fromfile(f.name)
    Path(f.name).unlink()
    cfg.merge_from_dict({'model.' + k: v for k, v in BACKBONES[name].items()})
    model = MODELS.build(cfg.model).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    w, h = size
    x = torch.randn(batch, 3, h, w, device=device)
    scaler = torch.amp.GradScaler('cuda', enabled=amp)
    samples = []
    for _ in range(batch):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[10., 20., 200., 220.], [50., 60., 90., 100.]], device=device),
                                      labels=torch.tensor([1, 2], device=device))
        samples.append(s)

    def step():
        with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
            losses = model.loss(x, samples)
            loss = sum(v.sum() if not isinstance(v, list) else sum(t.sum() for t in v) for v in losses.values())
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    for _ in range(2):
        step()
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    if device == 'cuda':
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {'name': name, 'sec_per_iter': (time.perf_counter() - t) / iters, 'peak_mib': peak,
            'params_m': sum(p.numel() for p in model.parameters()) / 1e6}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--size', type=int, nargs='+', default=[512], metavar='W [H]',
                   help='input side, or width and height (e.g. 1333 800)')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--device', default=None)
    p.add_argument('--amp', action='store_true', help='fp16 autocast + dynamic loss scaling (CUDA only)')
    p.add_argument('--one', help=argparse.SUPPRESS)
    args = p.parse_args()
    import torch
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        p.error('--device cuda: no CUDA device is available here')
    if args.amp and not args.device.startswith('cuda'):
        p.error('--amp needs --device cuda')
    if len(args.size) not in (1, 2):
        p.error('--size takes one side or a width and a height')
    size = (args.size[0], args.size[-1])
    if args.one:
        print(json.dumps(one(args.one, size, args.batch, args.iters, args.device, args.amp)))
        return
    tag = '_amp' if args.amp else ''
    print(f'device {args.device}{" AMP" if args.amp else ""}, input {size[0]}x{size[1]}, batch {args.batch}, '
          f'{args.iters} timed iterations')
    res = {}
    for name in BACKBONES:
        out = subprocess.run([sys.executable, __file__, '--one', name, '--size', *map(str, size), '--batch',
                              str(args.batch), '--iters', str(args.iters), '--device', args.device,
                              *(['--amp'] if args.amp else [])],
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            sys.exit(f'retinanet_{name} failed:\n{out.stderr[-3000:]}')
        r = json.loads(out.stdout.strip().splitlines()[-1])
        res[name] = r
        mem = 'peak RSS' if args.device == 'cpu' else 'peak CUDA memory'
        print(f'retinanet_{name}{tag}: {r["sec_per_iter"] * 1000:.0f} ms/iter, {mem} {r["peak_mib"]:.0f} MiB, '
              f'{r["params_m"]:.1f}M params')
    for other in ('mobilenetv2', 'resnet18'):
        print(f'ratio time cream_287/{other}{tag}: {res["cream_287"]["sec_per_iter"] / res[other]["sec_per_iter"]:.2f}')


if __name__ == '__main__':
    main()
