"""GPU speed options, checked without a GPU: AMP's autocast reaches the search step, the meta
update's fp32 region, ``--channels-last`` / ``--cudnn-benchmark`` as config entries and a
channels_last Runner. CPU autocast (bfloat16) stands in for CUDA's fp16: the wiring is the same.
"""
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper

import cream_det  # noqa: F401
from cream_det.engine.run import apply_speed_options, load_config
from cream_det.engine.supernet_search import SupernetSearch
from cream_det.models.supernet import Supernet
from cream_det.search.board import PrioritizedBoard
from cream_det.search.matching import MetaMatchingNetwork, meta_update
from cream_det.space import ArchSampler
from cream_det.space.spec import Op, SearchSpace, StageSpec
from cream_det.engine.cli import parse_and_load, train_parser

pytestmark = pytest.mark.usefixtures('one_thread')

NCLS, SLICE, RES = 5, 4, 32
TINY = SearchSpace('tiny_speed', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 2, Op(3, 2), 2)),
                   (Op(3, 2), Op(5, 2)), stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
                   last_channels=16, head_channels=16)
TOY = 'tests/scripts/search_toy_cfg.py'


class _BF16OptimWrapper(OptimWrapper):
    """An OptimWrapper whose ``optim_context`` autocasts to bfloat16 on the CPU, as AmpOptimWrapper does on CUDA."""

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield


@pytest.mark.parametrize('strategy', ['spos', 'cream'])
def test_search_step_runs_under_the_optim_wrappers_autocast(strategy):
    """mmengine enters autocast in ``optim_context``; a train_step of its own must do so too, or --amp
    would only scale the loss of fp32 forwards."""
    torch.manual_seed(0)
    model = SupernetSearch(dict(type=strategy), (0, 1e9), space=TINY,
                           resolution=RES, num_classes=NCLS, depths=(2, 2))
    seen = []
    model.supernet.classifier.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    x, y = torch.randn(8, 3, RES, RES), torch.randint(0, NCLS, (8,))
    model.train_step((x, y), _BF16OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
    assert seen and all(d == torch.bfloat16 for d in seen)
    seen.clear()
    model.train_step((x, y), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
    assert seen and all(d == torch.float32 for d in seen)


def _meta_setup():
    torch.manual_seed(0)
    net = Supernet(TINY, (2, 2), num_classes=NCLS, resolution=RES).train()
    codes = ArchSampler(TINY, RES, NCLS, depths=(2, 2), seed=0).sample_codes(3)
    board = PrioritizedBoard(size=2)
    for i, code in enumerate(codes[1:]):
        images = torch.randn(SLICE, 3, RES, RES)
        with torch.no_grad():
            soft = F.softmax(net(images, code), dim=1)
        board.consider(code, 50.0 + i, 1000 - i, images, soft, step=i)
    x = torch.randn(2 * SLICE, 3, RES, RES)
    y = torch.randint(0, NCLS, (2 * SLICE,))
    with torch.no_grad():
        soft = F.softmax(net(x[:SLICE], board.best().code), 1)
    return net, codes[0], board.best(), x, y, soft


def _matcher_grad(net, code, teacher, x, y, soft):
    matcher = MetaMatchingNetwork(NCLS, SLICE)
    with torch.no_grad():
        matcher.fc.weight.copy_(torch.linspace(-0.01, 0.01, matcher.fc.weight.numel()).view_as(matcher.fc.weight))
        matcher.fc.bias.fill_(0.1)
    meta_update(net, code, matcher, teacher, x[:SLICE], y[:SLICE], soft, x[SLICE:], y[SLICE:], inner_lr=0.5)
    return torch.cat([p.grad.flatten() for p in matcher.parameters()])


def test_meta_update_in_an_fp32_region_is_exact_under_autocast():
    """The contract for Cream under --amp: its meta update, run with autocast disabled on fp32
    tensors, gives the fp32 result bit for bit; run inside autocast it does not (so the region matters)."""
    net, code, teacher, x, y, soft = _meta_setup()
    reference = _matcher_grad(net, code, teacher, x, y, soft)
    assert reference.abs().max() > 0
    with torch.autocast('cpu', dtype=torch.bfloat16):
        with torch.autocast('cpu', enabled=False):
            protected = _matcher_grad(net, code, teacher, x, y, soft.float())
        try:
            unprotected = _matcher_grad(net, code, teacher, x, y, soft)
        except RuntimeError:                   # some reduced-precision double backwards do not exist at all
            unprotected = None
    assert torch.equal(protected, reference)
    assert unprotected is None or not torch.equal(unprotected, reference)


def test_flags_become_config_entries():
    p = train_parser('x')
    args, cfg = parse_and_load(p, [TOY, '--channels-last', '--cudnn-benchmark'])
    assert cfg.channels_last is True and cfg.env_cfg['cudnn_benchmark'] is True
    args, cfg = parse_and_load(p, [TOY, '--no-channels-last'])
    assert cfg.channels_last is False
    args, cfg = parse_and_load(p, [TOY])            # no flag: the config's own choice stays
    assert cfg.get('channels_last') == load_config(TOY).get('channels_last')
    assert not (cfg.get('env_cfg') or {}).get('cudnn_benchmark', False)
    cfg = apply_speed_options(load_config(TOY, {'env_cfg': {'cudnn_benchmark': True}}))
    assert cfg.env_cfg['cudnn_benchmark'] is True           # a flag never switches a config's choice off


def test_channels_last_auto_follows_the_device():
    from mmengine.config import Config

    from cream_det.engine.run import channels_last_enabled
    from cream_det.errors import ConfigError
    auto = Config(dict(channels_last='auto'))
    assert channels_last_enabled(auto, 'cpu') is True
    assert channels_last_enabled(auto, 'cuda') is False      # not measured on a GPU: off there
    assert channels_last_enabled(Config(dict(channels_last=True)), 'cuda') is True
    assert channels_last_enabled(Config(dict(channels_last=False)), 'cpu') is False
    assert channels_last_enabled(Config({}), 'cpu') is False  # mmdet's configs have no key: untouched
    with pytest.raises(ConfigError, match='channels_last'):
        channels_last_enabled(Config(dict(channels_last='yes')), 'cpu')


@pytest.mark.parametrize('config', ['configs/search/cream_demo.py', 'configs/search/spos_imagenet_0-600.py',
                                    'configs/retrain/demo_digits.py', 'configs/retrain/cream-14_imagenet.py',
                                    'configs/retrain/cream-287_imagenet.py'])
def test_search_and_retrain_configs_choose_the_layout_by_device(config):
    assert load_config(config).get('channels_last') == 'auto'


def _conv_weights(model):
    return [p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1]


def test_channels_last_runner_converts_the_weights_before_wrapping(tmp_path):
    from cream_det.engine.run import build_runner
    for value in (True, 'auto'):                       # 'auto' is on here: this test runs on a CPU
        cfg = load_config(TOY, {'channels_last': value}, work_dir=str(tmp_path / str(value)))
        convs = _conv_weights(build_runner(cfg).model)
        assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    plain = build_runner(load_config(TOY, {'channels_last': False}, work_dir=str(tmp_path / 'plain')))
    assert not any(p.is_contiguous(memory_format=torch.channels_last) for p in _conv_weights(plain.model))


def test_standalone_ground_truth_refuses_amp_on_cpu_batches():
    from cream_det.errors import ConfigError
    from cream_det.search.ranking_tool import train_standalone
    arch = ArchSampler(TINY, RES, NCLS, depths=(2, 2), seed=0).sample()
    batches = [(torch.randn(4, 3, RES, RES), torch.randint(0, NCLS, (4,)))]
    with pytest.raises(ConfigError, match='CUDA'):
        train_standalone(arch, batches, 1, amp=True)


def test_cream_meta_update_runs_in_fp32_under_the_wrappers_autocast():
    """Under --amp the Cream step autocasts, except its meta update's forwards (fp32 by design)."""
    torch.manual_seed(0)
    model = SupernetSearch(dict(type='cream', warmup_iters=0, meta_interval=2, meta_interval_by='global'), (0, 1e9),
                           space=TINY, resolution=RES, num_classes=NCLS, depths=(2, 2))
    wrapper = _BF16OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    seen = []
    model.supernet.classifier.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    x, y = torch.randn(12, 3, RES, RES), torch.randint(0, NCLS, (12,))
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    for it in (0, 1):                           # the board gets its first paths
        hub.update_info('iter', it)
        model.train_step((x, y), wrapper)
    seen.clear()
    hub.update_info('iter', 2)                  # a meta iteration
    entries = len(model.strategy.board)
    log = model.train_step((x, y), wrapper)
    assert 'meta_val_loss' in log and entries == 2
    # the meta update's teacher choice (one forward over the entries), teacher slice, entry
    # scoring, inner and validation forwards run in fp32; then the step's own selection (its dtype
    # is not the point), teacher and student forwards, the last two under autocast
    assert len(seen) == 8 and seen[:5] == [torch.float32] * 5 and seen[6:] == [torch.bfloat16] * 2
