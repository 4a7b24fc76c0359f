"""Per-group batch norm: one forward of groups x n images equals groups forwards of n images, in train mode."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import BatchNormAct2d

from cream_det.search.grouped_bn import grouped_batch_norm, per_group_batch_norm

pytestmark = pytest.mark.usefixtures('one_thread')
GROUPS, N = 5, 4


def _net(dtype=torch.float64):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, stride=2), BatchNormAct2d(8, act_layer=nn.SiLU),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 6), nn.BatchNorm1d(6))
    with torch.no_grad():                       # BN affine parameters away from 1 and 0
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return net.to(dtype).train()


def _images(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    # each group its own offset and scale, so pooling the groups' statistics shows
    x = torch.randn(GROUPS, N, 3, 12, 12, generator=g, dtype=dtype)
    x = x * torch.linspace(0.5, 3, GROUPS, dtype=dtype).view(-1, 1, 1, 1, 1) + torch.arange(GROUPS).view(-1, 1, 1, 1, 1)
    return x.flatten(0, 1)


def _buffers(net):
    return {k: v.clone() for k, v in net.state_dict().items() if 'running' in k}


@pytest.mark.parametrize('channels_last', [False, True])
def test_one_forward_equals_the_loop_over_groups_and_not_the_pooled_batch(channels_last):
    net, x = _net(), _images()
    loop_net = copy.deepcopy(net)
    with torch.no_grad():
        looped = torch.cat([loop_net(x[i * N:(i + 1) * N]) for i in range(GROUPS)])
        pooled = copy.deepcopy(net)(x)
        if channels_last:
            net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        before = _buffers(net)
        with per_group_batch_norm(GROUPS):
            grouped = net(x)
    torch.testing.assert_close(grouped, looped, rtol=1e-10, atol=1e-12)
    assert (pooled - looped).abs().max() > 0.1                 # one BN over all images is another function
    after = _buffers(net)                                      # running statistics neither read nor moved
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_one_group_is_the_plain_train_mode_forward_and_eval_mode_passes_through():
    net, x = _net(), _images()
    with torch.no_grad():
        plain = copy.deepcopy(net)(x)
        with per_group_batch_norm(1):
            one = net(x)
        torch.testing.assert_close(one, plain, rtol=0, atol=0)
        net.eval()
        evaluated = net(x)
        with per_group_batch_norm(GROUPS):
            torch.testing.assert_close(net(x), evaluated, rtol=0, atol=0)     # running statistics, as always


@pytest.mark.parametrize('native', [True, False])       # the CPU's kernels, or the generic path of other devices
def test_both_implementations_equal_the_loop_in_full_and_half_precision(native):
    x = _images(torch.float32)
    w, b = torch.rand(3) + 0.5, torch.rand(3) - 0.5
    looped = torch.cat([F.batch_norm(block, None, None, w, b, True, 0.0, 1e-5) for block in x.chunk(GROUPS)])
    torch.testing.assert_close(grouped_batch_norm(x, GROUPS, w, b, native=native), looped, rtol=1e-5, atol=1e-5)
    pooled = F.batch_norm(x, None, None, w, b, True, 0.0, 1e-5)
    assert (pooled - looped).abs().max() > 0.1
    low = grouped_batch_norm(x.to(torch.bfloat16), GROUPS, w, b, native=native)   # statistics in fp32
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), looped, rtol=2e-2, atol=2e-2)


def test_bad_groups_and_sync_batch_norm_are_refused():
    x = _images(torch.float32)
    with pytest.raises(ValueError, match='equal groups'):
        grouped_batch_norm(x, 3)
    with pytest.raises(ValueError, match='at least 1'):
        with per_group_batch_norm(0):
            pass
    with pytest.raises(RuntimeError, match='SyncBatchNorm'):
        with per_group_batch_norm(GROUPS):
            torch.batch_norm_stats(x, 1e-5)          # what SyncBatchNorm calls across processes
