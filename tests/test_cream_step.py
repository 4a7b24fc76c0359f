"""Cream.train_step without an engine: a tiny supernet, a plain SGD wrapper, hand-made batches.

Each test pins one mechanism so that a plausible wrong implementation fails it: warm-up gating,
the board's accuracy and soft targets, the blended loss with the matcher's m, when the meta update
runs, and which gradients reach the matching network.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from cream_det.errors import ConfigError
from cream_det.models.supernet import Supernet
from cream_det.search.cream import Cream
from cream_det.search.matching import select_teacher, soft_cross_entropy, student_probs
from cream_det.search.strategies import StepContext
from cream_det.space import Arch
from cream_det.space.spec import Op, SearchSpace, StageSpec

NCLS, RES, BATCH, SLICE = 5, 32, 12, 4
TINY = SearchSpace('tiny_cream_step', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 2, Op(3, 2), 2)),
                   (Op(3, 2), Op(5, 2), Op(3, 4)), stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
                   last_channels=16, head_channels=16)

pytestmark = pytest.mark.usefixtures('one_thread')


class PlainOptim:
    """The part of mmengine's OptimWrapper a strategy uses, over a plain SGD; records each update."""

    def __init__(self, params, lr=0.05):
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
        self.updates: list[dict] = []
        self.before_update = lambda: None

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def update_params(self, loss):
        self.updates.append({'loss': float(loss.detach())})
        self.before_update()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


class Recorder:
    """ctx.forward that remembers the student path and its logits."""

    def __init__(self, net):
        self.net, self.calls = net, []

    def __call__(self, x, code, **kw):
        out = self.net(x, code)
        self.calls.append((tuple(code), out.detach().clone()))
        return out


def _setup(**kw):
    torch.manual_seed(0)
    net = Supernet(TINY, (2, 2), num_classes=NCLS, resolution=RES).train()
    opts = dict(board_size=6, warmup_iters=2, meta_interval=10 ** 6, meta_interval_by='global', label_smoothing=0.1)
    opts.update(kw)
    cream = Cream(net, macs_range=None, seed=0, **opts)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(BATCH, 3, RES, RES, generator=g), torch.randint(0, NCLS, (BATCH,), generator=g)
    return net, cream, PlainOptim(net.parameters()), x, y


def _step(net, cream, opt, x, y, step, epoch=0, batch_idx=None, max_iters=None):
    rec = Recorder(net)
    log = cream.train_step(StepContext(net, rec, opt, x, y, step=step, epoch=epoch, batch_idx=batch_idx,
                                       max_iters=max_iters))
    return log, rec


def test_no_board_and_no_distillation_before_the_warm_up():
    net, cream, opt, x, y = _setup(warmup_iters=3)
    for step in range(3):
        log, rec = _step(net, cream, opt, x, y, step)
        (code, logits), = rec.calls
        assert len(cream.board) == 0 and 'm' not in log
        assert log['loss'] == pytest.approx(float(F.cross_entropy(logits, y, label_smoothing=0.1)), rel=1e-5)
    log, rec = _step(net, cream, opt, x, y, 3)           # first step after the warm-up: the board starts,
    assert len(cream.board) == 1 and 'm' not in log       # but nobody is on it to teach yet
    log, rec = _step(net, cream, opt, x, y, 4)
    assert 'm' in log and 0 < log['m'] < 1


def test_board_gets_the_training_batch_accuracy_after_the_optimizer_step():
    net, cream, opt, x, y = _setup(warmup_iters=0)
    sizes = []
    opt.before_update = lambda: sizes.append(len(cream.board))
    for step in range(4):
        log, rec = _step(net, cream, opt, x, y, step)
        (code, logits), = rec.calls
        acc = float((logits.argmax(1) == y).float().mean() * 100)
        assert sizes[-1] == step                           # the offer comes after the update
        entry = next(e for e in cream.board if e.code == code)
        assert entry.acc == pytest.approx(acc) == log['acc'] and entry.step == step
        torch.testing.assert_close(entry.images, x[:4])


@pytest.mark.parametrize('targets', ['teacher', 'own'])
def test_stored_soft_targets(targets):
    net, cream, opt, x, y = _setup(warmup_iters=0, board_targets=targets)
    _step(net, cream, opt, x, y, 0)
    before = copy.deepcopy(net)
    teachers = {e.code: F.softmax(before(x, e.code), 1).detach() for e in cream.board}
    log, rec = _step(net, cream, opt, x, y, 1)
    (code, logits), = rec.calls
    teacher_code = [c for c in teachers][log['teacher_rank'] - 1]
    entry = next(e for e in cream.board if e.code == code)
    want = teachers[teacher_code][:4] if targets == 'teacher' else F.softmax(logits[:4], 1)
    torch.testing.assert_close(entry.soft, want, rtol=1e-5, atol=1e-6)


def test_random_teacher_draws_every_board_rank_with_m_one_half():
    net, cream, opt, x, y = _setup(warmup_iters=0, teacher='random', board_size=3)
    ranks = set()
    for step in range(30):
        log, _ = _step(net, cream, opt, x, y, step)
        if 'm' in log:
            assert log['m'] == 0.5 and 'meta_val_loss' not in log
            ranks.add(log['teacher_rank'])
    assert ranks == {1, 2, 3}


@pytest.mark.parametrize('teacher', ['meta', 'top1'])
def test_loss_is_the_blend_with_the_matchers_m(teacher):
    net, cream, opt, x, y = _setup(warmup_iters=0, teacher=teacher)
    for step in range(3):
        _step(net, cream, opt, x, y, step)
    before, board = copy.deepcopy(net), cream.board.entries
    matcher = copy.deepcopy(cream.matcher)
    log, rec = _step(net, cream, opt, x, y, 3)
    (code, logits), = rec.calls
    if teacher == 'meta':
        idx, m = select_teacher(lambda im: before(im, code), board, matcher)   # train mode, one entry at a time
    else:
        idx, m = 0, 0.5
    assert log['teacher_rank'] == idx + 1 and log['m'] == pytest.approx(m, rel=1e-5)
    soft = F.softmax(before(x, board[idx].code), 1).detach()
    kd, ce = soft_cross_entropy(logits, soft), F.cross_entropy(logits, y, label_smoothing=0.1)
    assert log['loss'] == pytest.approx(float((m * kd + (2 - m) * ce) / 2), rel=1e-5)
    assert abs(float(kd) - float(ce)) > 1e-3          # the blend is not CE or KD alone


@pytest.mark.parametrize('matcher_grad, learns', [('both', True), ('student', True), ('meta', False)])
def test_the_student_loss_reaches_the_matcher_only_when_asked(matcher_grad, learns):
    net, cream, opt, x, y = _setup(warmup_iters=0, matcher_grad=matcher_grad)
    _step(net, cream, opt, x, y, 0)
    w = cream.matcher.fc.weight.detach().clone()
    log, _ = _step(net, cream, opt, x, y, 1)              # a distillation step without a meta update
    assert 'm' in log and 'meta_val_loss' not in log
    assert (not torch.equal(w, cream.matcher.fc.weight)) == learns


def test_meta_update_runs_exactly_at_the_configured_batch_indices():
    iters, epochs = 7, 4
    net, cream, opt, x, y = _setup(warmup_iters=0, warmup_epochs=1, meta_interval=3, meta_interval_by='epoch_iter')
    ran = []
    for step in range(iters * epochs):
        epoch, b = divmod(step, iters)
        log, _ = _step(net, cream, opt, x, y, step, epoch=epoch, batch_idx=b)
        if 'meta_val_loss' in log:
            ran.append((epoch, b))
    assert ran == [(e, b) for e in (1, 2, 3) for b in (3, 6)]          # never at index 0, never in warm-up
    assert cream.meta_updates == len(ran) == cream.planned_meta_updates(iters, iters * epochs)


def test_meta_update_by_global_step_and_its_real_student_step():
    net, cream, opt, x, y = _setup(warmup_iters=1, meta_interval=4, meta_student_step=True)
    steps = []
    real = opt.optimizer.step
    opt.optimizer.step = lambda *a, **k: steps.append(1) or real(*a, **k)
    ran = []
    for step in range(13):
        n = len(steps)
        log, _ = _step(net, cream, opt, x, y, step, epoch=0, batch_idx=step % 5)
        if 'meta_val_loss' in log:
            ran.append(step)
            assert len(steps) - n == 2                       # the meta update's student step, then the usual one
        else:
            assert len(steps) - n == 1
    assert ran == [4, 8, 12] and cream.planned_meta_updates(13, 13) == 3


def test_a_schedule_without_meta_updates_is_refused():
    net, cream, opt, x, y = _setup(warmup_iters=0, warmup_epochs=20, meta_interval=200, meta_interval_by='epoch_iter')
    with pytest.raises(ConfigError, match='no meta update'):
        cream.check_schedule(iters_per_epoch=34, max_iters=34 * 120)
    lines = Cream(net, macs_range=None, seed=0, warmup_epochs=20).check_schedule(1251, 1251 * 120)
    assert 'up to 600 meta updates' in lines[0]             # the authors' ImageNet schedule
    assert Cream(net, macs_range=None, seed=0, matcher_grad='student').check_schedule(34, 34)[0]


def test_epoch_report_counts_teachers_and_m():
    net, cream, opt, x, y = _setup(warmup_iters=0)
    ms = [_step(net, cream, opt, x, y, s)[0].get('m') for s in range(5)]
    line = cream.epoch_report()
    assert 'over 4 steps' in line and f'{sum(ms[1:]) / 4:.4f}' in line and '|W|' in line
    assert cream.epoch_report() is None                     # statistics restart each epoch


@pytest.mark.parametrize('key', ['selection', 'matcher_grad', 'board_tiebreak', 'meta_inner_loss', 'meta_clip_scope',
                                 'grad_reset'])
def test_bad_switch_values_are_config_errors(key):
    net = Supernet(TINY, (2, 2), num_classes=NCLS, resolution=RES)
    with pytest.raises(ConfigError, match=key):
        Cream(net, macs_range=None, seed=0, **{key: 'nope'})


def test_no_board_pick_error_says_which_case():
    from cream_det.engine.search_run import no_board_pick_error
    net, cream, opt, x, y = _setup(warmup_iters=100)
    assert 'board is empty' in str(no_board_pick_error(cream, (0, 1e9)))
    cream.warmup_iters = 0
    _step(net, cream, opt, x, y, 0)
    macs = cream.board.best().macs
    msg = str(no_board_pick_error(cream, (macs + 1, macs + 2)))
    assert 'none of the board' in msg and f'{macs / 1e6:.1f}M' in msg and 'constrain_macs=True' in msg
    assert 'has no board' in str(no_board_pick_error(object(), (0, 1)))


def test_per_entry_selection_is_one_forward_equal_to_the_loop_in_train_mode():
    """One forward of every entry's images, each entry normalised by its own batch statistics: the
    authors' loop of one forward per entry, not one BN batch of all images; no buffer moves."""
    net, cream, opt, x, y = _setup(warmup_iters=0, board_size=4)
    for step in range(4):                      # each entry keeps other images
        _step(net, cream, opt, x + torch.randn_like(x), y, step)
    entries = cream.board.entries
    assert len(entries) >= 3
    ctx = StepContext(net, net, opt, x, y, step=0)
    fn = cream._path_fn(ctx, entries[0].code)
    rows = []
    hook = net.classifier.register_forward_hook(lambda m, i, out: rows.append(len(out)))
    buffers = {k: v.clone() for k, v in net.state_dict().items()}
    grouped = student_probs(fn, entries, torch.device('cpu'), 'per_entry')
    idx, m = cream._choose_teacher(ctx, entries[0].code)
    hook.remove()
    assert rows == [SLICE * len(entries)] * 2                  # one forward each: the probs, then the pick
    assert all(torch.equal(v, buffers[k]) for k, v in net.state_dict().items())     # num_batches_tracked too
    direct = student_probs(cream._grouped_path_fn(ctx, entries[0].code), entries, torch.device('cpu'), 'per_entry')
    torch.testing.assert_close(direct, grouped, rtol=0, atol=0)      # the selection's own call, no copies swapped in
    assert all(torch.equal(v, buffers[k]) for k, v in net.state_dict().items())
    with torch.no_grad():
        looped = torch.stack([F.softmax(fn(e.images), 1) for e in entries])
    pooled = student_probs(fn, entries, torch.device('cpu'), 'batched')
    torch.testing.assert_close(grouped, looped, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(grouped, pooled, atol=1e-4)
    scores = torch.stack([cream.matcher(p, e.soft) for p, e in zip(looped, entries)]).detach()
    assert idx == int(scores.argmax()) and m == pytest.approx(float(torch.sigmoid(-scores[idx])), rel=1e-5)


def _code(op):
    return tuple(int(c) for c in Arch(tuple((TINY.ops[op],) * 2 for _ in TINY.stages), RES, NCLS, TINY).encode())


def _op_params(net, op):
    """Names of the parameters of candidate ``op`` in every searchable layer (``blocks.{s}.{i}.{op}...``)."""
    stages = {str(s + 1) for s in range(len(TINY.stages))}
    return [n for n, _ in net.named_parameters()
            if n.startswith('blocks.') and n.split('.')[1] in stages and n.split('.')[3] == str(op)]


def _torch12_sgd_step(params, state, lr, momentum, wd, grad_reset):
    """torch 1.2's SGD.step (Nesterov), written out: only a parameter whose .grad is None is skipped;
    weight decay is added into .grad in place; then the gradients are cleared as ``grad_reset`` says
    (torch 1.2's zero_grad zeroed them in place, today's default sets them to None)."""
    with torch.no_grad():
        for p in params:
            if p.grad is None:
                continue
            d_p = p.grad
            d_p.add_(p, alpha=wd)
            if p not in state:
                state[p] = d_p.clone()
            else:
                state[p].mul_(momentum).add_(d_p)
            p.add_(d_p + momentum * state[p], alpha=-lr)
    for p in params:
        if p.grad is not None:
            if grad_reset == 'zero':
                p.grad.zero_()
            else:
                p.grad = None


@pytest.mark.parametrize('grad_reset', ['zero', 'none'])
def test_grad_reset_zero_updates_every_op_ever_sampled_as_torch_1_2(grad_reset):
    """'zero': an op sampled once keeps being decayed and pushed by momentum when off the path; an op
    never sampled is never touched. 'none': only the path moves."""
    from mmengine.optim import OptimWrapper
    net, cream, _, x, y = _setup(warmup_iters=100, grad_reset=grad_reset)        # plain CE steps
    ref = copy.deepcopy(net)
    lr, momentum, wd = 0.1, 0.9, 0.05
    opt = OptimWrapper(torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, nesterov=True, weight_decay=wd))
    paths = [_code(0), _code(1), _code(1)]                    # op 0 once, op 1 twice, op 2 never
    cream.sample = lambda device, _it=iter(paths): next(_it)
    state, params = {}, list(ref.parameters())
    init = {n: p.detach().clone() for n, p in net.named_parameters()}
    seen = []
    for step, code in enumerate(paths):
        cream.train_step(StepContext(net, lambda a, c, **k: net(a, c), opt, x, y, step=step))
        F.cross_entropy(ref(x, code), y, label_smoothing=0.1).backward()
        _torch12_sgd_step(params, state, lr, momentum, wd, grad_reset)
        seen.append({n: p.detach().clone() for n, p in net.named_parameters()})
    for (n, p), q in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, msg=n)
    never = _op_params(net, 2)
    assert never and all(torch.equal(seen[-1][n], init[n]) for n in never)      # op 2 never ran: never updated
    once = _op_params(net, 0)                                 # op 0 ran at step 0 only
    moved_off_path = [not torch.equal(seen[0][n], seen[2][n]) for n in once]
    assert once and moved_off_path == [grad_reset == 'zero'] * len(once)


@pytest.mark.parametrize('scope', ['every_step', 'meta_update'])
def test_meta_clip_scope_decides_whether_the_first_order_step_is_clipped(scope):
    clip = 1e-6
    net, cream, opt, x, y = _setup(warmup_iters=0, matcher_grad='both', meta_interval=2, meta_clip=clip,
                                   meta_clip_scope=scope)
    norms = []
    real = cream.meta_opt.step
    cream.meta_opt.step = lambda *a, **k: norms.append(float(torch.linalg.vector_norm(
        torch.cat([p.grad.flatten() for p in cream.matcher.parameters()])))) or real(*a, **k)
    logs = [_step(net, cream, opt, x, y, step)[0] for step in range(3)]
    assert 'meta_val_loss' in logs[2] and 'meta_val_loss' not in logs[1]
    first_order, meta, first_order_2 = norms                  # step 1; step 2: the meta update, then step 2's own
    assert meta <= clip * (1 + 1e-4)                          # the meta update is clipped either way
    clipped = [n <= clip * (1 + 1e-4) for n in (first_order, first_order_2)]
    assert clipped == [scope == 'every_step'] * 2


# ---- warm-up as a fraction of the search --------------------------------------------------------------
def test_warmup_fraction_starts_the_board_at_its_share_of_the_search():
    net, cream, opt, x, y = _setup(warmup_iters=0, warmup_fraction=0.3)
    boards, taught = [], []
    for step in range(6):                                  # ceil(0.3 x 10) = 3: steps 0-2 are the warm-up
        log, _ = _step(net, cream, opt, x, y, step, max_iters=10)
        boards.append(len(cream.board))
        taught.append('m' in log)
    assert boards[:4] == [0, 0, 0, 1] and taught == [False] * 4 + [True] * 2
    assert cream.warmup_end(20) == 6 and cream.warmup_end(11) == 4          # ceil: at least the fraction
    authors = Cream(net, macs_range=None, seed=0, warmup_fraction=0.175)     # 21 of 120 epochs of 1,251 steps
    assert authors.warmup_end(1251 * 120) == 21 * 1251 == Cream(net, macs_range=None, seed=0,
                                                                warmup_epochs=21).warmup_end(1251 * 120, 1251)
    with pytest.raises(ConfigError, match='max_iters'):    # a fraction of an unknown total
        _step(net, cream, opt, x, y, 0)


@pytest.mark.parametrize('fraction, planned', [(0.5, 4), (0.4, 5)])
def test_planned_meta_updates_follow_the_fraction(fraction, planned):
    """7 iterations x 4 epochs, meta update at batch indices 3 and 6: a warm-up ending at step 14 (epoch 2)
    leaves 4; one ending at step 12 (epoch 1, index 5) leaves 5: not rounded to whole epochs."""
    iters, epochs = 7, 4
    net, cream, opt, x, y = _setup(warmup_iters=0, warmup_fraction=fraction, meta_interval=3,
                                   meta_interval_by='epoch_iter')
    assert cream.planned_meta_updates(iters, iters * epochs) == planned
    assert f'warm-up {fraction:g} of the search ({cream.warmup_end(iters * epochs)} iterations)' in \
        cream.check_schedule(iters, iters * epochs)[0]
    ran = 0
    for step in range(iters * epochs):
        epoch, b = divmod(step, iters)
        ran += 'meta_val_loss' in _step(net, cream, opt, x, y, step, epoch, b, max_iters=iters * epochs)[0]
    assert ran == planned


@pytest.mark.parametrize('given, match', [
    (dict(warmup_epochs=1, warmup_fraction=0.2), 'warmup_epochs and warmup_fraction'),
    (dict(warmup_iters=5, warmup_epochs=1), 'warmup_iters and warmup_epochs'),
    (dict(warmup_iters=5, warmup_fraction=0.1), 'warmup_iters and warmup_fraction'),
    (dict(warmup_fraction=1.0), r'\[0, 1\)'),
    (dict(board_eval_batches=0), 'board_eval_batches')])
def test_two_warm_ups_or_bad_values_are_config_errors(given, match):
    net = Supernet(TINY, (2, 2), num_classes=NCLS, resolution=RES)
    with pytest.raises(ConfigError, match=match):
        Cream(net, macs_range=None, seed=0, **given)


# ---- board entries scored on several batches ----------------------------------------------------------
def _labels(net, code, x, right):
    """Labels the path gets all right (or all wrong) on ``x`` in train mode."""
    with torch.no_grad():
        pred = net(x, code).argmax(1)
    return pred if right else (pred + 1) % NCLS


@pytest.mark.parametrize('n', [1, 2, 3])
def test_board_eval_batches_scores_the_path_on_the_earlier_batches_too(n):
    """Batch A (the path right on all 12) is trained on at step 0, inside the warm-up; batch B (all wrong)
    at step 1: the path enters with 0 % on B alone, 50 % on A and B (n = 2; n = 3 has only those two)."""
    net, cream, _, x, _ = _setup(warmup_iters=1, board_eval_batches=n)
    opt = PlainOptim(net.parameters(), lr=0.0)              # weights fixed: the labels stay right / wrong
    code = _code(1)
    cream.sample = lambda device: code
    x_b = x.flip(0) * 2
    y_a, y_b = _labels(net, code, x, True), _labels(net, code, x_b, False)
    _step(net, cream, opt, x, y_a, 0)
    log, _ = _step(net, cream, opt, x_b, y_b, 1)
    assert log['acc'] == cream.board[0].acc == pytest.approx(0.0 if n == 1 else 50.0)
    assert len(cream.recent) == n - 1


def test_recent_batches_score_each_batch_as_its_own_batchnorm_batch():
    """The kept batches of one size go through one forward in which each keeps its own BN statistics, as
    separate forwards would; pooled statistics (one plain forward of both) predict otherwise; the oldest
    batch beyond the size is dropped; buffers untouched."""
    from cream_det.search.recent_batches import RecentBatches
    net, cream, opt, x, _ = _setup(warmup_iters=0)
    code = _code(2)
    batches = [x + 9, x * 4 + 3, x, x[:5] - 1]              # the first is dropped; two of 12 images, one of 5
    labels = [_labels(net, code, b, i > 0) for i, b in enumerate(batches)]     # the dropped one all wrong
    with torch.no_grad():
        pooled = net(torch.cat(batches[1:3]), code).argmax(1)
    assert not torch.equal(pooled, torch.cat(labels[1:3]))  # the check below can tell the two apart
    recent = RecentBatches(3)
    for b, lab in zip(batches, labels):
        recent.push(b, lab)
    buffers = {k: v.clone() for k, v in net.state_dict().items()}
    ctx = StepContext(net, net, opt, x, labels[0], step=0)
    assert recent.correct(cream._grouped_path_fn(ctx, code), torch.device('cpu')) == (29, 29)
    assert all(torch.equal(v, buffers[k]) for k, v in net.state_dict().items())
    again = RecentBatches(3)
    again.load_state_dict(recent.state_dict())
    assert again.correct(cream._grouped_path_fn(ctx, code), torch.device('cpu')) == (29, 29)


# ---- the per-epoch report -------------------------------------------------------------------------------
def test_epoch_stats_report_what_the_board_and_the_matcher_did():
    import json
    net, cream, opt, x, y = _setup(warmup_iters=2, board_size=3)
    gaps, ms, ranks, versions = [], [], [], [cream.board_version]
    for step in range(7):
        before = copy.deepcopy(net)
        codes = [e.code for e in cream.board]
        log, rec = _step(net, cream, opt, x, y, step)
        if 'm' in log:
            (_, logits), = rec.calls
            teacher = before(x, codes[log['teacher_rank'] - 1])
            acc = lambda out: float((out.argmax(1) == y).float().mean() * 100)
            gaps.append(acc(teacher) - acc(logits))
            ms.append(log['m'])
            ranks.append(log['teacher_rank'])
        versions.append(cream.board_version)
    stats = cream.epoch_stats()
    assert stats['epoch'] == 1 and stats['steps'] == 7 and stats['warmup_steps'] == 2 and stats['warm']
    assert stats['m_count'] == len(ms) == 4 and stats['m_mean'] == pytest.approx(sum(ms) / 4)
    assert stats['m_std'] == pytest.approx(float(torch.tensor(ms, dtype=torch.float64).std()))
    assert stats['teacher_rank_counts'] == [ranks.count(r) for r in (1, 2, 3)]
    assert stats['teacher_minus_student_acc'] == pytest.approx(sum(gaps) / len(gaps))
    accs = [e.acc for e in cream.board]
    assert (stats['board_size'], stats['board_acc_min'], stats['board_acc_max']) == (len(accs), min(accs), max(accs))
    assert stats['board_acc_mean'] == pytest.approx(sum(accs) / len(accs))
    assert stats['board_entered'] == versions[-1] - versions[0] >= 3
    assert stats['meta_updates'] == cream.meta_updates
    line = cream.epoch_report()
    assert "over 4 steps" in line and cream.epoch_log == [stats]
    json.dumps(stats, allow_nan=False)
    log, _ = _step(net, cream, opt, x, y, 7, epoch=1)     # the next epoch starts from zero
    second = cream.epoch_stats()
    assert second['epoch'] == 2 and second['steps'] == 1 and second['warmup_steps'] == 0
    assert second['board_entered'] == cream.board_version - versions[-1]
    again = Cream(net, macs_range=None, seed=0, board_size=3)
    again.load_state_dict(cream.state_dict())               # the closed epochs survive a resume
    assert again.epoch_log == [stats] and again.epoch_stats() is None
