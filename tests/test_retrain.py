"""Retraining: ImageNet-folder dataset, classifier, hooks, tools/retrain.py, tools/test.py, DDP.

The end-to-end tests train the demo config (cream_14 at 64 px on the embedded digits) through the
real tools: once for accuracy, logged metrics and tools/test.py (a module fixture), once killed
with SIGKILL and resumed, and once in two gloo processes.
"""
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import cream_det  # noqa: F401  (registers the mmengine components)
from cream_det.data.imagenet import CreamImageFolder
from cream_det.engine import load_config
from cream_det.engine.classification import CreamAccuracy, CreamClassifier
from cream_det.engine.checkpoint_eval import evaluate_checkpoint
from cream_det.errors import ArchError, CheckpointError, ConfigError, DatasetError
from cream_det.models import build_subnet
from cream_det.space import ZOO, get_arch
from cream_det.models.checkpoint import embedded_arch, read_checkpoint, save_subnet_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CFG_DIR = ROOT / 'configs/retrain'
DEMO = CFG_DIR / 'demo_digits.py'
DIGEST_CFG = ROOT / 'tests/scripts/retrain_digest_cfg.py'      # DEMO + a per-rank digest hook
EPOCHS = 20                 # the demo (30 epochs) shortened; still well above chance (asserted)
ITERS_PER_EPOCH = 8         # 240 training images, batch 32


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """Other test processes share this small machine; torch's OpenMP threads then spin against them
    (a cream_14 forward was seen 100x slower with 2 threads than with 1)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


ENV = dict(os.environ, OMP_NUM_THREADS='1')


def _tool(name: str):
    """Import ``tools/<name>.py`` as a module, to call its ``main(argv)`` in this process."""
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', ROOT / 'tools' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _data_opts(root: Path, **extra) -> dict:
    opts = {f'{k}_dataloader.dataset.root': str(root) for k in ('train', 'val', 'test')}
    opts.update(extra)
    return opts


def _cli_opts(opts: dict) -> list:
    return ['--cfg-options', *[f'{k}={v!r}' for k, v in opts.items()]]


def _scalars(work: Path) -> list:
    return [json.loads(line) for f in sorted(work.glob('*/vis_data/scalars.json'))
            for line in f.read_text().splitlines()]


def _logged(work: Path, key: str) -> float:
    values = [d[key] for d in _scalars(work) if key in d]
    assert values, f'{key} was never logged in {work}'
    return values[-1]


# ---- configs and small pieces ---------------------------------------------------------------------
@pytest.mark.parametrize('name', list(ZOO))
def test_published_retrain_configs(name):
    n = name.split('_')[1]
    cfg = load_config(CFG_DIR / f'cream-{n}_imagenet.py')
    arch = get_arch(name)
    assert cfg.model.arch == name and cfg.data_root == 'data/imagenet'
    assert cfg.train_dataloader.dataset.input_size == cfg.val_dataloader.dataset.input_size == arch.resolution
    assert cfg.test_dataloader.dataset.input_size == arch.resolution
    # the authors' yamls: 500 epochs, + 10 cool-down epochs for the cosine nets; lr never rescaled
    # (the schedules themselves: tests/test_retrain_schedule.py)
    assert cfg.train_cfg.max_epochs == (500 if n in ('14', '43') else 510)
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=1024)
    assert cfg.optim_wrapper.optimizer.lr == 0.064 and cfg.model.drop_rate == 0.2
    model = CreamClassifier(cfg.model.arch)
    assert model.arch == arch and model.net.cream_arch == arch


def test_searched_config_needs_and_takes_an_arch(tmp_path):
    from cream_det.engine.retrain import apply_arch, config_arch, fill_input_size
    cfg = load_config(CFG_DIR / 'searched_imagenet.py')
    with pytest.raises(ConfigError, match='--arch'):
        config_arch(cfg)
    path = get_arch('cream_43').save(tmp_path / 'arch.json')
    apply_arch(cfg, str(path))
    fill_input_size(cfg)
    assert config_arch(cfg).stages == get_arch('cream_43').stages
    assert cfg.train_dataloader.dataset.input_size == cfg.test_dataloader.dataset.input_size == 96
    with pytest.raises(ArchError, match='valid|published'):
        apply_arch(cfg, 'cream_999')


def test_fractional_epoch_step_lr():
    """Decay x0.973 every 2.4 epochs = every 24 iterations at 10 iterations per epoch."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS
    opt = OptimWrapper(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0))
    sched = PARAM_SCHEDULERS.build(dict(type='FractionalEpochStepLR', step_size=2.4, gamma=0.5, by_epoch=True,
                                        convert_to_iter_based=True), default_args=dict(optimizer=opt,
                                                                                       epoch_length=10))
    lrs = []
    for _ in range(50):
        lrs.append(opt.get_lr()['lr'][0])
        opt.step()
        sched.step()
    assert lrs[23] == 1.0 and lrs[24] == 0.5 and lrs[47] == 0.5 and lrs[48] == 0.25
    with pytest.raises(ConfigError, match='convert_to_iter_based'):
        PARAM_SCHEDULERS.build(dict(type='FractionalEpochStepLR', step_size=2.4, by_epoch=True),
                               default_args=dict(optimizer=opt))


def test_classifier_modes_and_plain_keys():
    torch.manual_seed(0)
    model = CreamClassifier('cream_14', num_classes=10, mixup=dict(mixup_alpha=0.2))
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    assert model(x).shape == (4, 10)
    assert model(x, y, mode='loss')['loss'].ndim == 0
    assert model(x[:3], y[:3], mode='loss')['loss'].isfinite()          # odd batch: no mixup, still a loss
    model.eval()
    out = model(x, y, mode='predict')
    assert [o['gt_label'] for o in out] == [0, 1, 2, 3] and out[0]['scores'].shape == (10,)
    # a converted official checkpoint has bare timm keys: load_state_dict takes them as net.*
    bare = build_subnet('cream_14', num_classes=10).state_dict()
    model.load_state_dict(bare)
    assert torch.equal(model.net.conv_stem.weight, bare['conv_stem.weight'])


def test_accuracy_metric():
    m = CreamAccuracy(topk=(1, 2))
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5]])
    m.process({}, [{'scores': s, 'gt_label': g} for s, g in zip(scores, [1, 2, 0])])
    assert m.compute_metrics(m.results) == {'top1': pytest.approx(100 / 3), 'top2': pytest.approx(200 / 3)}


def test_checkpoint_hook_deletes_the_old_checkpoint_only_after_the_new_one(tmp_path):
    """mmengine deletes first; killed mid-save with max_keep_ckpts=1 that leaves nothing to resume."""
    from collections import deque
    from types import SimpleNamespace

    from mmengine.fileio import LocalBackend
    from mmengine.logging import MessageHub
    from cream_det.engine.retrain import CreamCheckpointHook

    def save(out_dir, filename, *args, **kwargs):
        if 'epoch_3' in filename:
            raise KeyboardInterrupt            # the kill, while writing
        (Path(out_dir) / filename).write_bytes(b'ckpt')

    hook = CreamCheckpointHook(interval=1, max_keep_ckpts=1)
    hook.out_dir, hook.file_backend, hook.keep_ckpt_ids = str(tmp_path), LocalBackend(), deque([1], 1)
    (tmp_path / 'epoch_1.pth').write_bytes(b'ckpt')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    runner = SimpleNamespace(work_dir=str(tmp_path), save_checkpoint=save,
                             message_hub=MessageHub.get_instance('test_checkpoint_hook_order'))
    hook._save_checkpoint_with_step(runner, 2, {})
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_2.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_2.pth')
    with pytest.raises(KeyboardInterrupt):
        hook._save_checkpoint_with_step(runner, 3, {})
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_2.pth')
    assert (tmp_path / 'epoch_2.pth').is_file()


# ---- the dataset and its errors --------------------------------------------------------------------
def test_dataset_reads_the_imagenet_layout(imagenet_digits):
    ds = CreamImageFolder(imagenet_digits, 'val', input_size=64)
    assert len(ds) == 60 and ds.num_classes == 10 and ds.metainfo['classes'][0] == 'n00000000'
    s = ds[0]
    assert s['inputs'].shape == (3, 64, 64) and s['label'] == 0


def test_dataset_layout_errors(imagenet_digits, tmp_path):
    with pytest.raises(DatasetError, match=r'nowhere not found.*<root>/<split>/<class>'):
        CreamImageFolder(tmp_path / 'nowhere', 'train', input_size=64)
    (tmp_path / 'flat' / 'train').mkdir(parents=True)
    shutil.copy(next(imagenet_digits.glob('train/*/*.JPEG')), tmp_path / 'flat' / 'train' / 'a.JPEG')
    with pytest.raises(DatasetError, match=r'no class folders \(found images directly in it: a.JPEG'):
        CreamImageFolder(tmp_path / 'flat', 'train', input_size=64)
    with pytest.raises(DatasetError, match=r'val not found \(folders in .*: train\)'):
        CreamImageFolder(tmp_path / 'flat', 'val', input_size=64)
    (tmp_path / 'empty' / 'train' / 'n1').mkdir(parents=True)
    with pytest.raises(DatasetError, match='no images'):
        CreamImageFolder(tmp_path / 'empty', 'train', input_size=64)
    with pytest.raises(ConfigError, match='input_size'):
        CreamImageFolder(imagenet_digits, 'train')


@pytest.fixture
def digits_copy(imagenet_digits, tmp_path):
    dst = tmp_path / 'digits'
    shutil.copytree(imagenet_digits, dst)
    return dst


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3])


def test_corrupt_image_skipped_in_training_and_named_in_evaluation(digits_copy, caplog):
    train = CreamImageFolder(digits_copy, 'train', input_size=64)
    bad = Path(train.filename(0, absolute=True))
    _truncate(bad)
    with caplog.at_level('WARNING'):
        s = train[0]
    assert s['label'] == train.reader.samples[1][1]             # the next image stands in
    assert str(bad) in caplog.text and 'skipping unreadable image' in caplog.text
    val = CreamImageFolder(digits_copy, 'val', input_size=64)
    vbad = Path(val.filename(3, absolute=True))
    vbad.write_bytes(b'not a jpeg')
    with pytest.raises(DatasetError, match=f'{vbad}: unreadable image'):
        val[3]
    for i in (1, 2):                                             # a damaged run of files gives up
        _truncate(Path(train.filename(i, absolute=True)))
    with pytest.raises(DatasetError, match='3 unreadable images in a row'):
        CreamImageFolder(digits_copy, 'train', input_size=64, max_bad_in_a_row=3)[0]


# ---- end to end ---------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def trained_demo(imagenet_digits, tmp_path_factory):
    """The demo config shortened to EPOCHS epochs, trained through tools/retrain.py."""
    work = tmp_path_factory.mktemp('retrain') / 'demo'
    opts = _data_opts(imagenet_digits, **{'train_cfg.max_epochs': EPOCHS, 'train_cfg.val_interval': EPOCHS,
                                          'default_hooks.checkpoint.interval': EPOCHS})
    _tool('retrain').main([str(DEMO), '--work-dir', str(work), *_cli_opts(opts)])
    return work


@pytest.mark.slow
def test_demo_retraining_learns_and_embeds_its_arch(trained_demo):
    top1, ema_top1 = _logged(trained_demo, 'top1'), _logged(trained_demo, 'ema/top1')
    assert top1 > 30.0 and ema_top1 > 30.0, (top1, ema_top1)        # chance is 10%
    ckpt = read_checkpoint(trained_demo / f'epoch_{EPOCHS}.pth')
    arch = embedded_arch(ckpt)
    assert arch.stages == get_arch('cream_14').stages and (arch.resolution, arch.num_classes) == (64, 10)
    assert ckpt['meta']['cream_weights'] == 'ema'
    assert all(k.startswith('net.') for k in ckpt['state_dict'])
    assert int(ckpt['ema_state_dict']['steps']) == EPOCHS * ITERS_PER_EPOCH
    assert not list(trained_demo.glob('.*.tmp'))


@pytest.mark.slow
def test_test_tool_reproduces_logged_accuracy(trained_demo, imagenet_digits, tmp_path):
    ckpt = trained_demo / f'epoch_{EPOCHS}.pth'
    # the checkpoint alone, in a fresh process: state_dict holds the EMA weights
    out = tmp_path / 'ema.json'
    r = subprocess.run([sys.executable, str(ROOT / 'tools/test.py'), str(ckpt), '--data-root', str(imagenet_digits),
                        '--num-workers', '0', '--out', str(out)], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(out.read_text())
    assert got['top1'] == pytest.approx(_logged(trained_demo, 'ema/top1'), abs=1e-6)
    assert got['top5'] == pytest.approx(_logged(trained_demo, 'ema/top5'), abs=1e-6)
    assert got['macs'] == get_arch('cream_14').with_(num_classes=10).macs and got['params'] > 1_000_000
    assert 'ema weights' in r.stdout
    raw = evaluate_checkpoint(ckpt, imagenet_digits, raw=True, num_workers=0)
    assert raw['top1'] == pytest.approx(_logged(trained_demo, 'top1'), abs=1e-6)
    # with the config (mmengine's test loop)
    out2 = tmp_path / 'cfg.json'
    _tool('test').main([str(DEMO), str(ckpt), '--work-dir', str(tmp_path / 't'), '--out', str(out2),
                        *_cli_opts(_data_opts(imagenet_digits))])
    assert json.loads(out2.read_text()) == got


def test_test_tool_accepts_converted_and_bare_checkpoints(imagenet_digits, tmp_path):
    arch = get_arch('cream_14').with_(num_classes=10)
    net = build_subnet(arch)
    conv = save_subnet_checkpoint(tmp_path / 'converted.pth', net.state_dict(), arch)
    r = evaluate_checkpoint(conv, imagenet_digits, num_workers=0)
    assert 0 <= r['top1'] <= 100 and r['num_images'] == 60 and r['macs'] == arch.macs
    bare = tmp_path / 'official.pth'               # the authors' layout: DDP prefix, no arch
    torch.save({'state_dict': {f'module.{k}': v for k, v in net.state_dict().items()}}, bare)
    with pytest.raises(CheckpointError, match='embeds no arch; pass --arch'):
        evaluate_checkpoint(bare, imagenet_digits, num_workers=0)
    assert evaluate_checkpoint(bare, imagenet_digits, arch='cream_14', num_workers=0)['top1'] == r['top1']
    with pytest.raises(CheckpointError, match='embeds arch .* but --arch names'):
        evaluate_checkpoint(conv, imagenet_digits, arch='cream_43', num_workers=0)
    wide = save_subnet_checkpoint(tmp_path / 'c1000.pth', build_subnet('cream_14').state_dict(), get_arch('cream_14'))
    with pytest.raises(DatasetError, match='10 class folders, but .* classifies 1000'):
        evaluate_checkpoint(wide, imagenet_digits, num_workers=0)


@pytest.mark.slow
def test_resume_after_sigkill_continues_step_and_lr(trained_demo, imagenet_digits, tmp_path):
    """Kill a run right after its first checkpoint; --resume continues with the uninterrupted
    run's iteration count and learning rate (the module fixture is that uninterrupted run)."""
    work = tmp_path / 'w'
    opts = _data_opts(imagenet_digits, **{'train_cfg.max_epochs': EPOCHS, 'train_cfg.val_interval': 100,
                                          'default_hooks.checkpoint.interval': 1,
                                          'default_hooks.checkpoint.max_keep_ckpts': 1})
    proc = subprocess.Popen([sys.executable, str(ROOT / 'tools/retrain.py'), str(DEMO), '--work-dir', str(work),
                             *_cli_opts(opts)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=ENV)
    try:
        deadline = time.monotonic() + 240
        while not (work / 'last_checkpoint').is_file():
            assert proc.poll() is None and time.monotonic() < deadline, 'the run ended before its first checkpoint'
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    last = (work / 'last_checkpoint').read_text().strip()
    k = int(Path(last).stem.split('_')[1])
    assert k < EPOCHS and Path(last).is_file()
    retrain = _tool('retrain')
    with pytest.raises(CheckpointError, match='trained for arch .* asks for'):
        retrain.main([str(DEMO), '--work-dir', str(work), '--resume', '--arch', 'cream_43', *_cli_opts(opts)])
    opts['train_cfg.max_epochs'] = k + 1
    retrain.main([str(DEMO), '--work-dir', str(work), '--resume', '--arch', 'cream_14', *_cli_opts(opts)])
    ckpt = read_checkpoint(work / f'epoch_{k + 1}.pth')
    step = (k + 1) * ITERS_PER_EPOCH
    assert ckpt['meta']['iter'] == step and ckpt['meta']['epoch'] == k + 1
    assert int(ckpt['ema_state_dict']['steps']) == step                 # the EMA resumed too
    resumed = [d for d in _scalars(work) if d.get('step') == step and 'lr' in d]
    reference = [d for d in _scalars(trained_demo) if d.get('step') == step and 'lr' in d]
    assert resumed and reference and resumed[-1]['lr'] == pytest.approx(reference[-1]['lr'], rel=1e-9)
    assert not (work / f'epoch_{k}.pth').exists()                       # max_keep_ckpts=1 still holds


def test_cli_errors_are_one_line(tmp_path, imagenet_digits):
    r = subprocess.run([sys.executable, str(ROOT / 'tools/retrain.py'), str(DEMO), '--arch', 'cream_999',
                        '--work-dir', str(tmp_path / 'w')], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert "error: 'cream_999' is neither a published net (cream_14, cream_43" in r.stderr
    retrain = _tool('retrain')
    with pytest.raises(DatasetError, match=r'nowhere not found.*<root>/<split>/<class>'):
        retrain.main([str(DEMO), '--work-dir', str(tmp_path / 'w'), *_cli_opts(_data_opts(tmp_path / 'nowhere'))])
    with pytest.raises(ConfigError, match='needs --data-root'):
        _tool('test').main([str(tmp_path / 'x.pth')])


# ---- two processes ---------------------------------------------------------------------------------------
@pytest.mark.dist
@pytest.mark.slow
def test_two_process_retraining_ranks_agree(imagenet_digits, tmp_path):
    """DDP over gloo through tools/dist_retrain.sh: the sampler shards the data (half the steps per
    rank), auto_scale_lr doubles the lr, EMA and the raw/EMA validation run, and the ranks end with
    the same parameters and EMA weights (tests/scripts/rank_digest_hook.py)."""
    work = tmp_path / 'w'
    opts = _data_opts(imagenet_digits, **{'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1})
    env = dict(ENV, PORT='29631', PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    r = subprocess.run([str(ROOT / 'tools/dist_retrain.sh'), str(DIGEST_CFG), '2', '--work-dir', str(work),
                        *_cli_opts(opts)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-3000:]
    assert 'Epoch(train) [1][4/4]' in log                  # 240 images / (2 ranks x 32) = 4 steps
    assert 'current batch size is 64. Scaling the original LR by 2.0' in log
    assert 'ema/top1' in log
    digests = [json.loads((work / f'digest_rank{i}.json').read_text()) for i in range(2)]
    assert [d['world'] for d in digests] == [2, 2]
    assert digests[0]['params'] == digests[1]['params'] and digests[0]['ema'] == digests[1]['ema']
    assert embedded_arch(read_checkpoint(work / 'epoch_1.pth')).stages == get_arch('cream_14').stages


@pytest.mark.slow
def test_detection_backbone_reads_a_retrain_checkpoint(trained_demo):
    from cream_det.det import CreamBackbone
    bb = CreamBackbone(init_cfg=dict(type='Pretrained', checkpoint=str(trained_demo / f'epoch_{EPOCHS}.pth')))
    bb.init_weights()
    assert bb.arch.stages == get_arch('cream_14').stages
