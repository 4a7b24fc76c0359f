"""Meta matching network: teacher choice, student loss, and the second-order update vs finite differences."""
import copy

import pytest
import torch
import torch.nn.functional as F

from cream_det.models.supernet import Supernet
from cream_det.search.board import PrioritizedBoard
from cream_det.search.matching import (MetaMatchingNetwork, entry_scores, meta_update, select_teacher,
                                       select_teacher_top1, soft_cross_entropy, student_loss)
from cream_det.space import ArchSampler
from cream_det.space.spec import Op, SearchSpace, StageSpec

NCLS, SLICE, RES = 5, 4, 32
TINY = SearchSpace('tiny_matching', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 2, Op(3, 2), 2)),
                   (Op(3, 2), Op(5, 2)), stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
                   last_channels=16, head_channels=16)


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture()
def setup():
    torch.manual_seed(0)
    net = Supernet(TINY, (2, 2), num_classes=NCLS, resolution=RES).double().train()
    codes = ArchSampler(TINY, RES, NCLS, depths=(2, 2), seed=0).sample_codes(6)
    board = PrioritizedBoard(size=5)
    for i, code in enumerate(codes[1:]):
        images = torch.randn(SLICE, 3, RES, RES, dtype=torch.float64)
        with torch.no_grad():
            soft = F.softmax(net(images, code), dim=1)
        board.consider(code, 50.0 + i, 1000 - i, images, soft, step=i)
    matcher = MetaMatchingNetwork(NCLS, SLICE).double()
    with torch.no_grad():
        matcher.fc.weight.normal_(0, 1.0)
    return net, codes[0], board, matcher


def test_per_entry_and_batched_selection_agree_in_eval_mode(setup):
    net, student, board, matcher = setup
    net.eval()
    fn = lambda x: net(x, student)      # noqa: E731
    calls = []
    idx, m = select_teacher(lambda x: calls.append(len(x)) or fn(x), board, matcher, selection='batched')
    assert calls == [SLICE * len(board)]                      # one forward for the whole board
    calls.clear()
    assert (idx, pytest.approx(m, abs=1e-12)) == select_teacher(lambda x: calls.append(len(x)) or fn(x), board,
                                                                matcher, selection='per_entry')
    assert calls == [SLICE * len(board)]                      # also one forward, each entry its own BN batch
    with torch.no_grad():
        scores = torch.stack([matcher(F.softmax(fn(e.images), 1), e.soft) for e in board])
    assert idx == int(scores.argmax()) and m == pytest.approx(float(torch.sigmoid(-scores[idx])))
    assert select_teacher_top1(board) == (0, 0.5)
    with pytest.raises(LookupError):
        select_teacher(fn, PrioritizedBoard(), matcher)


def test_selection_and_meta_update_give_the_same_m_in_train_mode(setup):
    """Each entry's images are their own BN batch in both places; pooling them changes m."""
    net, student, board, matcher = setup
    net.train()
    fn = lambda x: net(x, student)      # noqa: E731
    buffers = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        per_entry = torch.sigmoid(-entry_scores(fn, board, matcher, 'per_entry'))
        pooled = torch.sigmoid(-entry_scores(fn, board, matcher, 'batched'))
    net.load_state_dict(buffers)                              # undo the running-statistics updates
    assert not torch.allclose(per_entry, pooled)              # train-mode BN: pooled statistics differ
    data = _batch(3, net, board.best().code)
    for i, entry in enumerate(board):
        out = meta_update(net, student, matcher, entry, *data, inner_lr=LR)
        assert out['m'] == pytest.approx(float(per_entry[i]), rel=1e-10)


def test_authors_matcher_init_spreads_m_and_torch_init_does_not():
    torch.manual_seed(0)
    probs = F.softmax(torch.randn(10, SLICE, 1000) * 3, -1)
    soft = F.softmax(torch.randn(10, SLICE, 1000) * 3, -1)
    m_uniform = torch.sigmoid(-MetaMatchingNetwork(1000, SLICE, init='uniform')(probs, soft)).detach()
    m_torch = torch.sigmoid(-MetaMatchingNetwork(1000, SLICE, init='torch')(probs, soft)).detach()
    w = MetaMatchingNetwork(1000, SLICE).fc
    assert float(w.weight.abs().max()) > 0.99 and float(w.weight.abs().max()) <= 1 and float(w.bias) == 0
    assert float(m_torch.std()) < 0.01 < 0.05 < float(m_uniform.std())


def test_student_loss_blends_kd_and_ce():
    logits, labels = torch.randn(6, NCLS), torch.randint(0, NCLS, (6,))
    soft = F.softmax(torch.randn(6, NCLS), dim=1)
    ce, kd = F.cross_entropy(logits, labels), soft_cross_entropy(logits, soft)
    torch.testing.assert_close(soft_cross_entropy(logits, F.one_hot(labels, NCLS).float()), ce)
    torch.testing.assert_close(student_loss(logits, labels, soft, 0.0), ce)
    torch.testing.assert_close(student_loss(logits, labels, soft, 0.3), (0.3 * kd + 1.7 * ce) / 2)


def _batch(seed, net, teacher_code):
    g = torch.Generator().manual_seed(seed)
    x_tr = torch.randn(SLICE, 3, RES, RES, generator=g, dtype=torch.float64)
    x_val = torch.randn(SLICE, 3, RES, RES, generator=g, dtype=torch.float64)
    y_tr, y_val = torch.randint(0, NCLS, (SLICE,), generator=g), torch.randint(0, NCLS, (SLICE,), generator=g)
    with torch.no_grad():
        soft_tr = F.softmax(net(x_tr, teacher_code), dim=1)
    return x_tr, y_tr, soft_tr, x_val, y_val


LR = 0.5


@pytest.mark.parametrize('inner_loss, smoothing', [('blended', 0.0), ('kd', 0.1)])
def test_meta_gradient_matches_finite_differences(setup, inner_loss, smoothing):
    net, student, board, matcher = setup
    teacher = board.best()
    data = _batch(1, net, teacher.code)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opts = dict(inner_lr=LR, inner_loss=inner_loss, label_smoothing=smoothing)

    matcher.zero_grad()
    out = meta_update(net, student, matcher, teacher, *data, **opts)
    grad_w, grad_b = matcher.fc.weight.grad.clone(), matcher.fc.bias.grad.clone()
    assert 0 < out['m'] < 1 and grad_w.abs().max() > 0

    # the real supernet is exactly as before: weights, BN running statistics, no .grad
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in net.parameters())

    def val_loss_at(param, index, delta):
        with torch.no_grad():
            param.view(-1)[index] += delta
        loss = meta_update(net, student, matcher, teacher, *data, **opts)['val_loss']
        with torch.no_grad():
            param.view(-1)[index] -= delta
        return loss

    eps = 1e-5
    for param, grad, index in [(matcher.fc.weight, grad_w, 0), (matcher.fc.weight, grad_w, 7),
                               (matcher.fc.weight, grad_w, 19), (matcher.fc.bias, grad_b, 0)]:
        fd = (val_loss_at(param, index, eps) - val_loss_at(param, index, -eps)) / (2 * eps)
        assert fd == pytest.approx(float(grad.view(-1)[index]), rel=1e-4, abs=1e-10)


@pytest.mark.parametrize('inner_loss', ['blended', 'kd'])
def test_meta_update_loss_is_one_real_sgd_step(setup, inner_loss):
    net, student, board, matcher = setup
    teacher = board.best()
    x_tr, y_tr, soft_tr, x_val, y_val = data = _batch(2, net, teacher.code)
    out = meta_update(net, student, matcher, teacher, *data, inner_lr=LR, inner_loss=inner_loss, label_smoothing=0.1,
                      return_inner_grads=True)

    ref = copy.deepcopy(net)
    with torch.no_grad():
        m = torch.sigmoid(-matcher(F.softmax(ref(teacher.images, student), 1), teacher.soft))
    assert float(m) == pytest.approx(out['m'], rel=1e-12)
    logits = ref(x_tr, student)
    loss = (m * soft_cross_entropy(logits, soft_tr) if inner_loss == 'kd'
            else student_loss(logits, y_tr, soft_tr, m, label_smoothing=0.1))
    assert loss.item() == pytest.approx(out['train_loss'], rel=1e-12)
    loss.backward()
    names = dict(ref.named_parameters())
    assert sorted(out['inner_grads']) == sorted(n for n, p in names.items() if p.grad is not None)
    with torch.no_grad():
        for n, g in out['inner_grads'].items():
            torch.testing.assert_close(g, names[n].grad, rtol=1e-10, atol=1e-12)
        for p in ref.parameters():
            if p.grad is not None:
                p -= LR * p.grad
    val = F.cross_entropy(ref(x_val, student), y_val, label_smoothing=0.1)
    assert val.item() == pytest.approx(out['val_loss'], rel=1e-10)
