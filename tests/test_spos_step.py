"""The SPOS step as the Runner runs it (``SupernetSearch.train_step`` with the optimizer the search
config builds) against a straightforward reference: each step exports the path as a stand-alone
timm subnet, runs it, and applies hand-written SGD (Nesterov momentum, weight decay on conv and
linear weights only, as the config's ``paramwise_cfg`` asks) to the path's weights in a copy of
the supernet. Whatever is done to make the step cheaper must leave losses, weights, momentum and
BatchNorm statistics where the reference puts them.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper

import cream_det  # noqa: F401
from cream_det.engine.supernet_search import SupernetSearch
from cream_det.space import ArchSampler
from cream_det.space.spec import Op, SearchSpace, StageSpec

pytestmark = pytest.mark.usefixtures('one_thread')

NCLS, RES = 7, 32
SPACE = SearchSpace('tiny_spos_step', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 2, Op(3, 2), 2)),
                    (Op(3, 2), Op(5, 2), Op(3, 4)), stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
                    last_channels=16, head_channels=32)
LR, MOMENTUM, WD = 0.2, 0.9, 1e-2
# the ImageNet search configs' optimizer (configs/search/cream_imagenet_0-600.py), larger lr and decay
OPTIM = dict(optimizer=dict(type='SGD', lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WD),
             paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))


def _reference_step(supernet, code, x, y, bufs, smoothing):
    """One SPOS step done the plain way: stand-alone subnet forward/backward, hand-written SGD."""
    shared = supernet.subnet_state_dict(code)          # subnet key -> the supernet's tensor (same storage)
    sub = supernet.export_subnet(code)
    loss = F.cross_entropy(sub(x), y, label_smoothing=smoothing)
    loss.backward()
    with torch.no_grad():
        for k, p in sub.named_parameters():
            if p.grad is None:
                continue
            target = shared[k]
            d = p.grad + (WD if p.dim() > 1 else 0.0) * target       # decay: conv / linear weights only
            key = target.data_ptr()
            bufs[key] = d.clone() if key not in bufs else bufs[key] * MOMENTUM + d
            target -= LR * (d + MOMENTUM * bufs[key])                  # Nesterov
        for k, b in sub.named_buffers():                                # BN running statistics
            shared[k].copy_(b)
    return float(loss.detach())


@pytest.mark.parametrize('constructor', ['DefaultOptimWrapperConstructor', 'GroupedOptimWrapperConstructor'])
def test_spos_step_matches_a_plain_subnet_step_with_hand_written_sgd(constructor):
    torch.manual_seed(0)
    model = SupernetSearch(dict(type='spos'), (0, 1e12), space=SPACE, resolution=RES, num_classes=NCLS,
                           depths=(2, 2)).train()
    reference = copy.deepcopy(model.supernet)
    codes = [tuple(int(c) for c in code) for code in
             ArchSampler(SPACE, RES, NCLS, depths=(2, 2), seed=3).sample_codes(3)]
    plan = [codes[0], codes[1], codes[0], codes[2], codes[1]]           # paths come back: momentum is reused
    queue = iter(plan)
    model.strategy.sample = lambda device: next(queue)
    ow = build_optim_wrapper(model, {**copy.deepcopy(OPTIM), 'constructor': constructor})
    bufs: dict = {}
    g = torch.Generator().manual_seed(1)
    for code in plan:
        x = torch.randn(6, 3, RES, RES, generator=g)
        y = torch.randint(0, NCLS, (6,), generator=g)
        ref_loss = _reference_step(reference, code, x, y, bufs, smoothing=0.1)    # SPOS: smoothed CE
        log = model.train_step((x, y), ow)
        assert float(log['loss']) == pytest.approx(ref_loss, rel=1e-5, abs=1e-6)
    got, want = model.supernet.state_dict(), reference.state_dict()
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6, msg=k)
    # the steps really trained: every path's weights moved, every other op's stayed at its start
    torch.manual_seed(0)
    start = SupernetSearch(dict(type='spos'), (0, 1e12), space=SPACE, resolution=RES, num_classes=NCLS,
                           depths=(2, 2)).supernet.state_dict()
    used = {n for code in plan for n, _ in model.supernet.named_path_parameters(code)}
    for n, p in model.supernet.named_parameters():
        assert torch.equal(p, start[n]) != (n in used), n


def test_grouped_constructor_merges_equal_groups_only():
    """Two groups (with and without decay) instead of one per parameter; every parameter once, in order."""
    model = SupernetSearch(dict(type='spos'), (0, 1e12), space=SPACE, resolution=RES, num_classes=NCLS,
                           depths=(2, 2))
    params = list(model.parameters())
    default = build_optim_wrapper(model, copy.deepcopy(OPTIM)).optimizer
    grouped = build_optim_wrapper(model, {**copy.deepcopy(OPTIM), 'constructor': 'GroupedOptimWrapperConstructor'})
    groups = grouped.optimizer.param_groups
    assert len(default.param_groups) == len(params) and len(groups) == 2
    assert sorted(g['weight_decay'] for g in groups) == [0.0, WD]
    decay = {id(p) for g in default.param_groups if g['weight_decay'] for p in g['params']}
    for g in groups:
        assert all((id(p) in decay) == bool(g['weight_decay']) for p in g['params'])
        assert g['lr'] == LR and g['momentum'] == MOMENTUM and g['nesterov']
    order = {id(p): i for i, p in enumerate(params)}
    assert sorted(id(p) for g in groups for p in g['params']) == sorted(order)
    assert all([order[id(p)] for p in g['params']] == sorted(order[id(p)] for p in g['params']) for g in groups)
