"""Faults of long runs (docs/faults.md): a stalled or killed rank, a checkpoint that cannot be written,
a damaged checkpoint on --resume, a NaN/inf loss. Each ends with one clear error and loses nothing."""
import datetime
import errno
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import cream_det  # noqa: F401
import tests.scripts.poison_hooks  # noqa: F401  (PoisonBatchHook, PoisonWeightHook)
from cream_det.engine import load_config
from cream_det.engine.launch import DEFAULT_TIMEOUT_S, process_group_args
from cream_det.errors import CheckpointError, ConfigError, TrainingError, WriteError

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / 'tests/scripts/search_toy_cfg.py'
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHON=sys.executable)


# ---- 1. the launch honours env_cfg.dist_cfg as mmengine's init_dist does ------------------------------------
@pytest.mark.parametrize('dist_cfg', [dict(backend='nccl', timeout=45), dict(backend='gloo'),
                                      dict(timeout=7.5, init_method='env://'), {}])
def test_process_group_args_mirror_mmengine_init_dist(dist_cfg, monkeypatch):
    """On CUDA we pass init_process_group exactly what mmengine's own init_dist would (plus our
    default timeout where the config has none); on CPU the backend is gloo."""
    import mmengine.dist.utils as mm
    seen = {}
    monkeypatch.setattr(mm.torch_dist, 'init_process_group', lambda **kw: seen.update(kw))
    monkeypatch.setattr(mm.torch.cuda, 'set_device', lambda i: None)
    monkeypatch.setattr(mm, 'is_mlu_available', lambda: False)
    monkeypatch.setattr(mm, 'is_npu_available', lambda: False)
    monkeypatch.setattr(mm, 'is_musa_available', lambda: False, raising=False)
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    mm.init_dist('pytorch', **dict(dist_cfg))
    ours = process_group_args(dist_cfg, cuda=True)
    expected = dict(seen)
    expected.setdefault('timeout', datetime.timedelta(seconds=DEFAULT_TIMEOUT_S))
    assert ours == expected
    cpu = process_group_args(dist_cfg, cuda=False)
    assert cpu == dict(expected, backend='gloo')


def test_process_group_args_refuse_what_cannot_run():
    with pytest.raises(ConfigError, match=r"init_backend='deepspeed'.*torch.distributed only"):
        process_group_args(dict(init_backend='deepspeed'), cuda=True)
    with pytest.raises(ConfigError, match=r"timeout='30 min': give the collective timeout in seconds"):
        process_group_args(dict(timeout='30 min'), cuda=False)
    with pytest.raises(ConfigError, match='positive'):
        process_group_args(dict(timeout=0), cuda=False)


def test_a_collective_timeout_becomes_one_error_naming_it_and_the_checkpoint(tmp_path):
    """What rank 0 prints when gloo gives up on a stalled peer (the exception as torch raises it)."""
    from types import SimpleNamespace

    from cream_det.engine.faults import stop_cleanly
    from cream_det.utils.io import atomic_torch_save
    atomic_torch_save({'state_dict': {}}, tmp_path / 'epoch_3.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=17, cfg={'env_cfg': {'dist_cfg': {'timeout': 20}}})

    # gloo's error as torch raises it, out of a frame of torch.distributed (compiled under its file name)
    c10d = {}
    exec(compile('def all_reduce(t):\n    raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/unbound_buffer'
                 '.cc:78] Timed out waiting 20000ms for recv operation to complete")\n',
                 '/venv/site-packages/torch/distributed/distributed_c10d.py', 'exec'), c10d)

    def all_reduce_that_times_out():
        c10d['all_reduce'](torch.ones(1))
    with pytest.raises(TrainingError) as e, stop_cleanly(runner):
        all_reduce_that_times_out()
    msg = str(e.value)
    assert 'after 17 iterations' in msg and 'torch.distributed.all_reduce' in msg and 'within 20 s' in msg
    assert f'last intact checkpoint is {tmp_path / "epoch_3.pth"}' in msg and '--resume' in msg
    with pytest.raises(ValueError, match='not a collective'), stop_cleanly(runner):   # anything else: untouched
        raise ValueError('not a collective')


# ---- 2. a checkpoint that cannot be written ---------------------------------------------------------------
class _FillsUp(io.FileIO):
    """A file whose disk fills after ``limit`` bytes (ENOSPC, as a full disk gives)."""
    limit = 1000

    def write(self, b):
        if self.tell() + len(b) > self.limit:
            super().write(bytes(b)[:max(0, self.limit - self.tell())])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(b)


def _disk_full(monkeypatch):
    import cream_det.utils.io as cio
    monkeypatch.setattr(cio.os, 'fdopen', lambda fd, mode: _FillsUp(fd, 'wb'))


def _read_only(monkeypatch):
    import cream_det.utils.io as cio

    def mkstemp(*a, **k):               # what a read-only mount answers (root ignores a chmod)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr(cio.tempfile, 'mkstemp', mkstemp)


@pytest.mark.parametrize('hook_type', ['CheckpointHook', 'CreamCheckpointHook'])
@pytest.mark.parametrize('fault', ['disk_full', 'read_only'])
def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_one(hook_type, fault, tmp_path, monkeypatch):
    """mmengine's hook (the search's) and ours (retraining's), max_keep_ckpts=1: the failed save raises
    one WriteError, and the previous checkpoint and last_checkpoint are untouched and loadable."""
    from collections import deque
    from types import SimpleNamespace

    from mmengine.fileio import get_file_backend
    from mmengine.logging import MessageHub
    from mmengine.registry import HOOKS as REG
    from mmengine.runner.checkpoint import save_checkpoint

    from cream_det.models.checkpoint import latest_checkpoint, read_checkpoint
    weights = {'state_dict': {'w': torch.randn(64, 64)}}

    def save(out_dir, filename, *args, **kwargs):      # Runner.save_checkpoint's write: through the file backend
        save_checkpoint(weights, str(Path(out_dir) / filename))

    hook = REG.build(dict(type=hook_type, interval=1, max_keep_ckpts=1))
    hook.out_dir, hook.file_backend, hook.keep_ckpt_ids = str(tmp_path), get_file_backend(str(tmp_path)), deque()
    runner = SimpleNamespace(work_dir=str(tmp_path), save_checkpoint=save,
                             message_hub=MessageHub.get_instance(f'faults_{hook_type}_{fault}'))
    hook._save_checkpoint_with_step(runner, 1, {})
    before = (tmp_path / 'epoch_1.pth').read_bytes(), (tmp_path / 'last_checkpoint').read_text()
    (_disk_full if fault == 'disk_full' else _read_only)(monkeypatch)
    with pytest.raises(WriteError) as e:
        hook._save_checkpoint_with_step(runner, 2, {})
    reason = 'No space left on device' if fault == 'disk_full' else 'Read-only file system'
    assert str(tmp_path / 'epoch_2.pth') in str(e.value) and reason in str(e.value) and 'untouched' in str(e.value)
    assert isinstance(e.value, OSError) and e.value.errno == (errno.ENOSPC if fault == 'disk_full' else errno.EROFS)
    monkeypatch.undo()
    if hook_type == 'CreamCheckpointHook':          # mmengine's deletes the old one before saving: ours does not
        assert (tmp_path / 'epoch_1.pth').read_bytes() == before[0]
    assert (tmp_path / 'last_checkpoint').read_text() == before[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ['last_checkpoint'] + (['epoch_1.pth'] if hook_type == 'CreamCheckpointHook' else []))   # no temp file left
    if hook_type == 'CreamCheckpointHook':
        assert torch.equal(read_checkpoint(latest_checkpoint(tmp_path, intact=True))['state_dict']['w'],
                           weights['state_dict']['w'])


def test_a_failed_write_during_training_names_the_checkpoint_to_resume_from(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from cream_det.engine.faults import stop_cleanly
    from cream_det.utils.io import atomic_torch_save
    atomic_torch_save({'state_dict': {}}, tmp_path / 'iter_4.pth')
    _disk_full(monkeypatch)
    with pytest.raises(WriteError) as e, stop_cleanly(SimpleNamespace(work_dir=str(tmp_path), iter=6)):
        atomic_torch_save({'state_dict': {'w': torch.randn(100, 100)}}, tmp_path / 'iter_6.pth')
    monkeypatch.undo()
    assert f'last intact checkpoint is {tmp_path / "iter_4.pth"}' in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_4.pth']


# ---- 3. a damaged checkpoint on --resume ------------------------------------------------------------------
def _work_dir_with_truncated_latest(tmp_path):
    from cream_det.utils.io import atomic_torch_save
    work = tmp_path / 'work'
    for i in (1, 2):
        atomic_torch_save({'state_dict': {'w': torch.full((256,), float(i))}}, work / f'epoch_{i}.pth')
    data = (work / 'epoch_2.pth').read_bytes()
    (work / 'epoch_2.pth').write_bytes(data[:len(data) // 2])          # a disk that filled before atomic writes
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    return work


def test_resume_from_a_truncated_latest_checkpoint_is_one_error_or_the_fallback(tmp_path):
    from cream_det.engine.run import resume_checkpoint
    work = _work_dir_with_truncated_latest(tmp_path)
    for resume in (True, str(work / 'epoch_2.pth')):
        cfg = load_config(TOY, {}, str(work))
        with pytest.raises(CheckpointError) as e:
            resume_checkpoint(cfg, resume)
        msg = str(e.value)
        assert str(work / 'epoch_2.pth') in msg and 'not' in msg and 'intact' in msg or 'not a readable' in msg
        assert f'newest intact checkpoint in {work} is {work / "epoch_1.pth"}' in msg and '--resume-fallback' in msg
        cfg = load_config(TOY, {'resume_fallback': True}, str(work))
        assert resume_checkpoint(cfg, resume) == str(work / 'epoch_1.pth') == cfg.load_from and cfg.resume
    # a work dir moved since: the marker's checkpoint is found by its name (not a fallback)
    (work / 'last_checkpoint').write_text('/elsewhere/work/epoch_1.pth')
    assert resume_checkpoint(load_config(TOY, {}, str(work)), True) == str(work / 'epoch_1.pth')
    # an empty marker (mmengine's hook killed while writing it) means the newest whole checkpoint
    (work / 'epoch_2.pth').unlink()
    (work / 'last_checkpoint').write_text('')
    cfg = load_config(TOY, {}, str(work))
    assert resume_checkpoint(cfg, True) == str(work / 'epoch_1.pth')


def test_resume_fallback_flag_on_the_tools(capsys):
    """--resume-fallback exists on search/retrain/train and needs --resume."""
    import importlib.util
    from cream_det.engine.cli import parse_and_load, train_parser
    args, cfg = parse_and_load(train_parser('x'), [str(TOY), '--resume', '--resume-fallback'])
    assert cfg.resume_fallback is True and args.resume is True
    with pytest.raises(SystemExit):
        parse_and_load(train_parser('x'), [str(TOY), '--resume-fallback'])
    for tool in ('search', 'retrain', 'train'):
        spec = importlib.util.spec_from_file_location(f'_tool_{tool}', ROOT / 'tools' / f'{tool}.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with pytest.raises(SystemExit):
            module.main(['--help'])
        assert '--resume-fallback' in capsys.readouterr().out, tool


# ---- 4. a NaN or inf loss ----------------------------------------------------------------------------------
def _poisoned(tmp_path, iters, **extra):
    opts = {'train_cfg.max_epochs': 2, 'param_scheduler.0.end': 12, 'default_hooks.logger.interval': 1,
            'custom_hooks': [dict(type='SearchStateHook'), dict(type='SearchOutputsHook', plot=False),
                             dict(type='PoisonBatchHook', iters=iters)], **extra}
    return load_config(TOY, opts, str(tmp_path))


def _all_finite(work):
    from cream_det.engine.finite_loss import nonfinite_tensors
    from cream_det.models.checkpoint import read_checkpoint
    for p in sorted(work.glob('epoch_*.pth')):
        ck = read_checkpoint(p)
        assert not list(nonfinite_tensors({k: v for k, v in ck.items() if k != 'message_hub'})), p
    board = json.loads((work / 'board.json').read_text())
    assert all(math.isfinite(e['acc']) for e in board['entries'])
    return board


def test_a_nan_loss_stops_the_search_naming_iteration_path_and_checkpoint(tmp_path):
    from cream_det.engine.search_run import run_search
    with pytest.raises(TrainingError) as e:
        run_search(_poisoned(tmp_path, [7]))                    # iteration 8, in epoch 2 (6 per epoch)
    msg = str(e.value)
    assert msg.startswith('iteration 8 (epoch 2): the loss is nan, training path (')
    assert f'last intact checkpoint is {tmp_path / "epoch_1.pth"}' in msg
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']
    _all_finite(tmp_path)


def test_skip_mode_drops_the_nan_steps_and_counts_them(tmp_path):
    from cream_det.engine.search_run import run_search
    runner, _ = run_search(_poisoned(tmp_path, [7, 9], nonfinite_loss='skip'))
    hook = next(h for h in runner.hooks if type(h).__name__ == 'FiniteLossHook')
    assert hook.skipped == 2 and runner.iter == 12
    board = _all_finite(tmp_path)
    assert all(e['step'] not in (7, 9) for e in board['entries'])          # the skipped steps reached no board
    from cream_det.models.checkpoint import read_checkpoint
    history = read_checkpoint(tmp_path / 'epoch_2.pth')['search_state']['history']
    assert len(history) == 10 and {h[0] for h in history}.isdisjoint({7, 9})
    import logging              # (two Runners started within a second share one logger and its file)
    log = Path(next(h.baseFilename for h in runner.logger.handlers if isinstance(h, logging.FileHandler))).read_text()
    assert 'iteration 8 (epoch 2): the loss is nan' in log and 'step skipped (1 skipped so far)' in log
    assert 'epoch 2: 2 step(s) skipped for a non-finite loss' in log
    # many in a row: the weights themselves are broken, the run stops
    with pytest.raises(TrainingError, match='3 non-finite losses in a row'):
        run_search(_poisoned(tmp_path / 'b', [7, 8, 9], nonfinite_loss='skip',
                             custom_hooks=[dict(type='SearchStateHook'), dict(type='PoisonBatchHook', iters=[7, 8, 9]),
                                           dict(type='FiniteLossHook', max_consecutive_skips=3)]))


def test_a_nan_never_reaches_a_checkpoint(tmp_path):
    """Whatever the loss said: a checkpoint holding NaN/inf (here a weight set to inf) is refused."""
    from cream_det.engine.run import build_runner
    runner = build_runner(load_config(TOY, {}, str(tmp_path)))
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    with torch.no_grad():
        next(model.supernet.parameters()).view(-1)[0] = float('inf')
    with pytest.raises(TrainingError, match=r'refusing to save a checkpoint with NaN/inf in state_dict\.supernet'):
        runner.save_checkpoint(str(tmp_path), 'epoch_1.pth', save_optimizer=False, save_param_scheduler=False)
    assert not (tmp_path / 'epoch_1.pth').exists()


def test_every_run_and_every_detection_config_has_the_hook():
    from mmengine.config import Config

    from cream_det.engine.finite_loss import add_finite_loss_hook
    cfg = add_finite_loss_hook(load_config(TOY, {'nonfinite_loss': 'skip'}))
    assert [h for h in cfg.custom_hooks if h['type'] == 'FiniteLossHook'] == [
        dict(type='FiniteLossHook', on_nonfinite='skip')]
    with pytest.raises(ConfigError, match="nonfinite_loss='ignore'"):
        add_finite_loss_hook(load_config(TOY, {'nonfinite_loss': 'ignore'}))
    for family in ('retinanet', 'fcos', 'faster_rcnn'):        # for mmdet's own tools/train.py: in the config
        for cfg_path in sorted((ROOT / 'configs' / family).glob('*cream-[2d]*.py')):   # the 287 and demo nets
            det = Config.fromfile(str(cfg_path))
            assert [h['type'] for h in det.get('custom_hooks', [])].count('FiniteLossHook') == 1, cfg_path


# ---- 1. (two processes) a stalled rank, a killed rank ---------------------------------------------------
def _dist_search(work, port, args, restarts=0):
    """tools/dist_search.sh TOY 2 in the background, its output in files (a full pipe would block it)."""
    work.mkdir(parents=True, exist_ok=True)
    out = open(work.parent / f'{work.name}.out', 'w')
    env = dict(ENV, PORT=str(port), MAX_RESTARTS=str(restarts))
    return subprocess.Popen([str(ROOT / 'tools/dist_search.sh'), str(TOY), '2', '--work-dir', str(work), *args],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _rank_pid(agent, rank, deadline):
    """The pid of torchrun's worker ``rank`` (a child of the agent with RANK=rank in its environment)."""
    while time.time() < deadline and agent.poll() is None:
        for d in Path('/proc').iterdir():
            try:
                if d.name.isdigit() and int((d / 'stat').read_text().rsplit(')', 1)[1].split()[1]) == agent.pid \
                        and f'RANK={rank}'.encode() in (d / 'environ').read_bytes().split(b'\0'):
                    return int(d.name)
            except (OSError, ValueError, IndexError):
                continue
        time.sleep(0.1)
    raise AssertionError('torchrun started no worker of rank %d' % rank)


def _after_first_checkpoint(agent, work, rank=1, deadline_s=240):
    deadline = time.time() + deadline_s
    pid = _rank_pid(agent, rank, deadline)
    while not (work / 'epoch_1.pth').exists() and time.time() < deadline and agent.poll() is None:
        time.sleep(0.01)
    assert (work / 'epoch_1.pth').exists() and agent.poll() is None, _output(work)
    return pid


def _output(work):
    return (work.parent / f'{work.name}.out').read_text()[-4000:]


def _finish(agent, pids):
    for pid in pids:                 # leave nothing stopped behind, whatever the test's outcome
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if agent.poll() is None:
        agent.kill()
    agent.wait(30)


#: torchrun, once a worker failed, sends the others SIGTERM and waits 30 s before SIGKILL; a stopped
#: process never handles SIGTERM, so the job ends at the timeout + 30 s (+ this much slack)
STALL_SLACK_S = 20


@pytest.mark.dist
@pytest.mark.slow
def test_a_stalled_rank_ends_the_run_within_the_timeout(tmp_path):
    timeout = 20
    work = tmp_path / 'stalled'
    agent = _dist_search(work, 29671, ['--cfg-options', f'env_cfg.dist_cfg.timeout={timeout}',
                                      'train_cfg.max_epochs=60', 'param_scheduler.0.end=180'])
    pid = None
    try:
        pid = _after_first_checkpoint(agent, work)
        os.kill(pid, signal.SIGSTOP)
        t0 = time.time()
        rc = agent.wait(timeout + 30 + STALL_SLACK_S)
        elapsed = time.time() - t0
    finally:
        _finish(agent, [pid] if pid else [])
    out = _output(work)
    assert rc != 0 and timeout - 1 <= elapsed <= timeout + 30 + STALL_SLACK_S, (rc, elapsed, out)
    from cream_det.models.checkpoint import latest_checkpoint, read_checkpoint
    last = latest_checkpoint(work, intact=True)
    assert read_checkpoint(last)['search_state']                                     # whole, loadable
    assert f'got no answer from another rank within {timeout} s' in out and f'checkpoint is {last}' in out, out
    assert 'error: rank 0 after' in out and not (work / 'arch.json').exists()


@pytest.mark.dist
@pytest.mark.slow
def test_a_killed_rank_ends_the_run_in_seconds_and_resume_or_restart_matches(tmp_path):
    """Rank 1 SIGKILLed after the first checkpoint: the job ends within seconds; --resume then ends with
    the weights and board of an uninterrupted run; so does torchrun --max-restarts=1 with --resume."""
    from cream_det.models.checkpoint import latest_checkpoint, read_checkpoint
    ref = tmp_path / 'ref'
    agent = _dist_search(ref, 29672, [])
    assert agent.wait(600) == 0, _output(ref)

    killed = tmp_path / 'killed'
    agent = _dist_search(killed, 29673, [])
    try:
        os.kill(_after_first_checkpoint(agent, killed), signal.SIGKILL)
        t0 = time.time()
        rc = agent.wait(60)
        elapsed = time.time() - t0
    finally:
        _finish(agent, [])
    assert rc != 0 and elapsed < 15, (rc, elapsed, _output(killed))
    assert read_checkpoint(latest_checkpoint(killed, intact=True))['search_state']
    agent = _dist_search(killed, 29674, ['--resume'])
    assert agent.wait(600) == 0, _output(killed)

    restarted = tmp_path / 'restarted'          # the job resumes by itself: a restart reruns `... --resume`
    agent = _dist_search(restarted, 29675, ['--resume'], restarts=1)
    try:
        os.kill(_after_first_checkpoint(agent, restarted), signal.SIGKILL)
        assert agent.wait(600) == 0, _output(restarted)
    finally:
        _finish(agent, [])
    assert 'resumed' in _output(restarted).lower()

    a = read_checkpoint(ref / 'epoch_4.pth')
    board = json.loads((ref / 'board.json').read_text())['entries']
    for work in (killed, restarted):
        b = read_checkpoint(work / 'epoch_4.pth')
        assert a['state_dict'].keys() == b['state_dict'].keys()
        for k, v in a['state_dict'].items():
            torch.testing.assert_close(b['state_dict'][k], v, rtol=1e-5, atol=1e-6, msg=k)
        other = json.loads((work / 'board.json').read_text())['entries']
        assert [(e['arch'], e['step'], e['macs']) for e in other] == [(e['arch'], e['step'], e['macs']) for e in board]
        assert [e['acc'] for e in other] == pytest.approx([e['acc'] for e in board], abs=1e-6)


@pytest.mark.slow
def test_a_nan_loss_stops_retraining_before_any_checkpoint_holds_it(imagenet_digits, tmp_path, one_thread):
    """mmengine's own train_step (retraining; detection takes the same path): stopped at the iteration,
    the last checkpoint named and left the last one."""
    from cream_det.engine import train
    from cream_det.models.checkpoint import read_checkpoint
    opts = {f'{k}_dataloader.dataset.root': str(imagenet_digits) for k in ('train', 'val', 'test')}
    opts.update({'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 10, 'default_hooks.checkpoint.interval': 1})
    cfg = load_config(ROOT / 'configs/retrain/demo_digits.py', opts, str(tmp_path))
    cfg.custom_hooks = [*cfg.custom_hooks, dict(type='PoisonWeightHook', at=11)]    # 8 iterations per epoch
    with pytest.raises(TrainingError) as e:
        train(cfg)
    msg = str(e.value)
    assert msg.startswith('iteration 12 (epoch 2): the loss is nan') and 'training path' not in msg
    assert f'last intact checkpoint is {tmp_path / "epoch_1.pth"}' in msg
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']
    from cream_det.engine.finite_loss import nonfinite_tensors
    ck = read_checkpoint(tmp_path / 'epoch_1.pth')
    assert not list(nonfinite_tensors({k: v for k, v in ck.items() if k != 'message_hub'}))


@pytest.mark.slow
def test_mmdet_own_train_py_stops_at_a_nan_loss_through_the_configs_hook(coco_digits, tmp_path):
    """Detection under mmdet's own tools/train.py: the hook comes from the config's custom_hooks alone."""
    import mmdet
    root = str(coco_digits) + '/'
    opts = {'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root,
            'val_evaluator.ann_file': root + 'annotations/instances_val.json',
            'test_evaluator.ann_file': root + 'annotations/instances_val.json'}
    cfg = tmp_path / 'poisoned.py'          # the demo config, its custom_hooks untouched, plus the poison
    cfg.write_text(f"_base_ = '{ROOT / 'configs/retinanet/retinanet_cream-demo_fpn_digits.py'}'\n"
                   "custom_imports = dict(imports=['cream_det', 'tests.scripts.poison_hooks'],"
                   " allow_failed_imports=False)\n"
                   "default_hooks = dict(poison=dict(type='PoisonWeightHook', at=2))\n")
    train_py = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'train.py'
    r = subprocess.run([sys.executable, str(train_py), str(cfg), '--work-dir', str(tmp_path / 'w'),
                        '--cfg-options', *[f'{k}={v}' for k, v in opts.items()]],
                       capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)
    assert r.returncode != 0
    assert 'TrainingError: iteration 3 (epoch 1): the loss is nan' in r.stderr, r.stderr[-3000:]
    assert 'holds no intact checkpoint yet' in r.stderr and not list((tmp_path / 'w').glob('*.pth'))


@pytest.mark.dist
def test_two_processes_skip_the_same_step_when_one_rank_sees_nan(tmp_path):
    """Rank 1's loss alone is NaN: both ranks skip that step (DDP survives a step without backward)
    and still hold the same weights, paths and board."""
    cfg = tmp_path / 'poisoned.py'
    cfg.write_text(f"_base_ = '{TOY}'\n"
                   "custom_imports = dict(imports=['cream_det', 'tests.search_testdata', 'tests.scripts.poison_hooks'],"
                   " allow_failed_imports=False)\n"
                   "custom_hooks = [dict(type='SearchStateHook'), dict(type='SearchOutputsHook', plot=False),"
                   " dict(type='PoisonBatchHook', iters=[4], rank=1)]\n"
                   "nonfinite_loss = 'skip'\n")
    work = tmp_path / 'w'
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29676',
                        str(ROOT / 'tests/scripts/dist_search_check.py'), str(cfg), str(work)],
                       capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert 'iteration 5 (epoch 2): the loss is non-finite on another rank' in out   # rank 0's log (rank 1 logs none)
    a, b = (json.loads((work / f'search_rank{i}.json').read_text()) for i in range(2))
    assert len(a['history']) == 11 and {h[0] for h in a['history']}.isdisjoint({4})      # 12 steps, one skipped
    for key in ('params', 'board_codes', 'board_acc', 'board_tensors', 'history', 'matcher'):
        assert a[key] == b[key], key
