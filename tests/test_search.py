"""Supernet search end to end: tools/search.py (cream, spos + evolution, mixpath + evolution), resume,
2 processes, errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import cream_det  # noqa: F401
from cream_det.engine import load_config
from cream_det.engine.search_run import run_search
from cream_det.search.cream_epochs import read_epoch_log
from cream_det.errors import ArchError, CreamDetError, SpaceError
from cream_det.space import Arch

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / 'tests/scripts/search_toy_cfg.py'
SPOS = {'model.strategy': {'_delete_': True, 'type': 'spos'}}
# MixPath on the toy config; the range starts above every single-path arch of the toy space, so the
# evolution's pick is a multi-path arch
MIXPATH = {'model.strategy': {'_delete_': True, 'type': 'mixpath', 'max_paths': 2},
           'model.macs_range': (1.0e6, 10e6), 'final_pick': 'evolution'}
# Cream's switches, each at its non-default value in one of these (resume and 2-process tests)
CREAM_AUTHORS = {'model.strategy.board_tiebreak': 'flops_desc', 'model.strategy.meta_inner_lr': 'meta',
                 'model.strategy.meta_inner_loss': 'kd', 'model.strategy.meta_student_step': True}
CREAM_ALT = {'model.strategy.selection': 'batched', 'model.strategy.board_targets': 'own',
             'model.strategy.matcher_init': 'torch', 'model.strategy.matcher_grad': 'meta',
             'model.strategy.meta_interval_by': 'global', 'model.strategy.label_smoothing': 0.0,
             'model.strategy.meta_lr_decay': False, 'model.strategy.meta_clip': None,
             'model.strategy.meta_nesterov': False, 'model.strategy.board_acc': 'heldout',
             'model.strategy.heldout_size': 4, 'model.strategy.board_eval_batches': 2}
CREAM_TOP1 = {'model.strategy.teacher': 'top1', 'model.strategy.warmup_iters': 0,
              'model.strategy.warmup_fraction': 0.25}
CREAM_STUDENT = {'model.strategy.matcher_grad': 'student', 'model.strategy.warmup_iters': 0,
                 'model.strategy.warmup_epochs': 1}
STRATEGY_OPTIONS = {'cream': {}, 'cream-authors': CREAM_AUTHORS, 'cream-alt': CREAM_ALT, 'cream-top1': CREAM_TOP1,
                    'cream-student': CREAM_STUDENT, 'mixpath': MIXPATH}


def _cli(opts):
    return [f'{k}={v!r}' for k, v in opts.items()]


def _search(args, cwd=ROOT, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, str(ROOT / 'tools/search.py'), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, **kw)


def _board(work):
    return json.loads((work / 'board.json').read_text())


def test_cream_search_tool_writes_board_arch_and_plot(tmp_path):
    r = _search([str(TOY), '--work-dir', str(tmp_path)])
    assert r.returncode == 0, r.stderr[-3000:]
    board = _board(tmp_path)
    accs = [e['acc'] for e in board['entries']]
    assert 1 <= len(accs) <= 4 and accs == sorted(accs, reverse=True)
    arch = Arch.load(tmp_path / 'arch.json')
    assert arch == Arch.from_dict(board['entries'][0]['arch'])     # the paper's pick: the best board path
    assert (tmp_path / 'board.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    summary = json.loads((tmp_path / 'search_summary.json').read_text())
    assert summary['strategy'] == 'Cream' and summary['final_pick'] == 'board'
    assert 'board_best_acc' in r.stdout + r.stderr and 'meta_val_loss' in r.stdout + r.stderr
    epochs = read_epoch_log(tmp_path / 'cream_epochs.jsonl')     # 4 epochs of 6 steps, warm-up 4 iterations
    assert [e['epoch'] for e in epochs] == [1, 2, 3, 4] and [e['warmup_steps'] for e in epochs] == [4, 0, 0, 0]
    assert all(sum(e['teacher_rank_counts']) == e['m_count'] for e in epochs)
    assert sum(e['m_count'] for e in epochs) >= 24 - 4 - 1 and sum(e['board_entered'] for e in epochs) >= len(accs)
    assert (epochs[-1]['board_acc_max'], epochs[-1]['board_acc_min']) == (accs[0], accs[-1])
    assert epochs[-1]['meta_updates'] == 6         # batch indices 2 and 4 of epochs 2-4 (at step 4 the board is empty)


def test_spos_with_evolution(tmp_path):
    cfg = load_config(TOY, SPOS, str(tmp_path))
    runner, summary = run_search(cfg)
    assert summary['final_pick'] == 'evolution' and summary['evolution']['evaluated'] >= 8
    arch = Arch.load(tmp_path / 'arch.json')
    assert arch.space.name == 'tiny_test_search' and arch.depths == (2, 2)
    assert (tmp_path / 'evolution_state.pth').is_file()


def _kill_and_resume(cfg, tmp_path, opts, kill_at='epoch_3.pth', check_killed=None):
    """Run ``cfg`` uninterrupted (``ref``) and killed with SIGKILL mid-run then resumed (``killed``).

    The kill comes as soon as ``kill_at`` exists in the work dir; ``check_killed(work_dir)`` may
    inspect what the killed run left before it is resumed.
    """
    ref = tmp_path / 'ref'
    r = _search([str(cfg), '--work-dir', str(ref), *opts])
    assert r.returncode == 0, r.stderr[-3000:]
    killed = tmp_path / 'killed'
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    p = subprocess.Popen([sys.executable, str(ROOT / 'tools/search.py'), str(cfg), '--work-dir', str(killed), *opts],
                         cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / kill_at).exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL                            # really killed mid-run
    assert not (killed / 'arch.json').exists()
    if check_killed is not None:
        check_killed(killed)
    r = _search([str(cfg), '--work-dir', str(killed), '--resume', *opts])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed' in (r.stdout + r.stderr).lower()
    return ref, killed


@pytest.mark.parametrize('strategy', list(STRATEGY_OPTIONS))
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, strategy):
    """A search killed with SIGKILL mid-run and resumed ends with the same board (Cream) or the same
    weights, trained paths and evolution (MixPath), and the same arch."""
    opts = ['--cfg-options', 'train_cfg.max_epochs=8', 'param_scheduler.0.end=48', *_cli(STRATEGY_OPTIONS[strategy])]
    ref, killed = _kill_and_resume(TOY, tmp_path, opts)
    if strategy.startswith('cream'):
        a, b = _board(ref), _board(killed)
        assert [(e['acc'], e['macs'], e['step']) for e in a['entries']] == \
               [(e['acc'], e['macs'], e['step']) for e in b['entries']]
        # each epoch once (the killed run's lines rewritten from the checkpoint's), as uninterrupted
        epochs = [read_epoch_log(w / 'cream_epochs.jsonl') for w in (ref, killed)]
        assert [e['epoch'] for e in epochs[1]] == list(range(1, 9)) and epochs[0] == epochs[1]
    else:
        from cream_det.models.checkpoint import read_checkpoint
        a, b = (read_checkpoint(w / 'epoch_8.pth') for w in (ref, killed))
        assert a['search_state']['history'] == b['search_state']['history']          # same paths, same accs
        assert a['state_dict'].keys() == b['state_dict'].keys()
        assert all(torch.equal(a['state_dict'][k], b['state_dict'][k]) for k in a['state_dict'])
        ev = [json.loads((w / 'search_summary.json').read_text())['evolution'] for w in (ref, killed)]
        assert ev[0] == ev[1]
        assert Arch.load(ref / 'arch.json').is_multipath
    assert Arch.load(ref / 'arch.json') == Arch.load(killed / 'arch.json')


@pytest.mark.dist
@pytest.mark.parametrize('strategy', ['cream', 'cream-authors', 'cream-alt', 'cream-top1', 'cream-student', 'spos',
                                      'mixpath'])
def test_two_processes_train_same_paths_and_hold_same_board(tmp_path, strategy):
    """Every rank trains the same paths (and holds the same board); the evolution (rank 0 alone,
    SPOS and MixPath) finishes and writes the arch."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    options = {**STRATEGY_OPTIONS, 'spos': {**SPOS, 'final_pick': 'evolution'}}[strategy]
    port = 29631 + list(STRATEGY_OPTIONS).index(strategy) if strategy in STRATEGY_OPTIONS else 29630
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={port}',
                        str(ROOT / 'tests/scripts/dist_search_check.py'), str(TOY), str(tmp_path),
                        json.dumps(options)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (json.loads((tmp_path / f'search_rank{i}.json').read_text()) for i in range(2))
    assert a['world'] == 2
    if strategy.startswith('cream'):
        assert len(a['board_codes']) >= 1
    else:                   # no board: the paths trained (every layer's op set) must agree
        assert len(a['history']) == 12
        assert Arch.load(tmp_path / 'arch.json').is_multipath == (strategy == 'mixpath')
    for key in ('params', 'board_codes', 'board_acc', 'board_tensors', 'history', 'matcher'):
        assert a[key] == b[key], key


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(SpaceError, match=r'infeasible: .* have between [\d.]+M and [\d.]+M MACs'):
        run_search(load_config(TOY, {'model.macs_range': (1e12, 2e12)}, str(tmp_path / 'a')))
    # a corrupt checkpoint to resume from
    work = tmp_path / 'b'
    work.mkdir()
    (work / 'epoch_1.pth').write_bytes(b'garbage')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    with pytest.raises(CreamDetError, match='not an intact checkpoint'):
        run_search(load_config(TOY, {}, str(work)), resume=True)
    with pytest.raises(CreamDetError, match='not a readable PyTorch checkpoint'):
        run_search(load_config(TOY, {}, str(work)), resume=str(work / 'epoch_1.pth'))
    # an arch of another space given to the supernet
    cfg = load_config(TOY, {}, str(tmp_path / 'c'))
    from cream_det.engine.run import build_runner
    model = build_runner(cfg).model
    with pytest.raises(ArchError, match="search space 'cream_mbv3'"):
        model.supernet.parse_path(cream_det.space.get_arch('cream_14'))
    r = _search([str(tmp_path / 'missing.py')])
    assert r.returncode == 2 and 'config file not found' in r.stderr and 'Traceback' not in r.stderr
    # MixPath: more ops at once than a layer has
    too_many = {**MIXPATH, 'model.strategy': {**MIXPATH['model.strategy'], 'max_paths': 4}}
    with pytest.raises(SpaceError, match=r'max_paths=4 is larger than the 3 ops of search space tiny_test_search'):
        run_search(load_config(TOY, too_many, str(tmp_path / 'd')))
    r = _search([str(TOY), '--work-dir', str(tmp_path / 'e'), '--cfg-options', *_cli(too_many)])
    assert r.returncode == 2 and 'max_paths=4 is larger than the 3 ops' in r.stderr and 'Traceback' not in r.stderr


def test_ranking_tool_reports_kendall_tau(tmp_path):
    r = _search([str(TOY), '--work-dir', str(tmp_path)])
    assert r.returncode == 0, r.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    out = tmp_path / 'ranking.json'
    r = subprocess.run([sys.executable, str(ROOT / 'tools/rank_archs.py'), str(TOY), str(tmp_path / 'epoch_4.pth'),
                        '--num-archs', '4', '--epochs', '1', '--out', str(out)], capture_output=True, text=True,
                       cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert len(res['archs']) == 4 and len(res['standalone_top1']) == 4
    assert -1.0 <= res['kendall_tau'] <= 1.0 or res['kendall_tau'] != res['kendall_tau']   # NaN only if constant
    assert 'kendall tau:' in r.stdout
