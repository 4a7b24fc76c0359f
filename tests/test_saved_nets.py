"""The one reader of saved nets, the one "latest checkpoint" rule and the finished-search reader."""
import json

import pytest
import torch

from cream_det.errors import CheckpointError, ConfigError
from cream_det.models import build_subnet
from cream_det.models.checkpoint import (HEAD_KEYS, latest_checkpoint, load_subnet, same_network,
                                         save_subnet_checkpoint, strip_to_subnet)
from cream_det.search.finished import read_search, read_summary, write_summary
from cream_det.space import get_arch

pytestmark = pytest.mark.usefixtures('one_thread')


def test_same_network_counts_the_classes_only_for_a_head():
    a = get_arch('cream_14')
    a10 = a.with_(num_classes=10)
    assert same_network(a, a10) and not same_network(a, a10, head=True)
    assert same_network(a, a.with_(resolution=96), head=True)           # the resolution never counts
    assert not same_network(a, get_arch('cream_43'))
    assert same_network(None, a, head=True) and same_network(a, None)


def test_every_container_gives_the_same_bare_subnet_weights(tmp_path):
    arch = get_arch('cream_14').with_(num_classes=10)
    sd = build_subnet(arch).state_dict()
    layouts = {'converted': sd, 'runner': {f'net.{k}': v for k, v in sd.items()},
               'detector': {f'backbone.net.{k}': v for k, v in sd.items()},
               'ddp': {f'module.net.{k}': v for k, v in sd.items()}}
    for name, weights in layouts.items():
        path = tmp_path / f'{name}.pth'
        extra = {} if name == 'converted' else {'data_preprocessor.mean': torch.zeros(3)}    # outside the subnet
        torch.save({'state_dict': {**weights, **extra}}, path)
        got_arch, got = load_subnet(path, arch)
        assert got_arch == arch and set(got) == set(sd), name
        assert all(torch.equal(got[k], sd[k]) for k in sd), name
        _, bare = load_subnet(path, arch, drop_head=True)
        assert bare and not any(k.startswith(HEAD_KEYS) for k in bare)
        assert set(bare) == {k for k in sd if not k.startswith(HEAD_KEYS)}
    assert strip_to_subnet({'x.conv_stem.weight': 1, 'y.z': 2}) == {'conv_stem.weight': 1}


def test_the_embedded_arch_decides_and_must_agree(tmp_path):
    arch = get_arch('cream_14').with_(num_classes=10)
    path = save_subnet_checkpoint(tmp_path / 'c.pth', build_subnet(arch).state_dict(), arch)
    got, _ = load_subnet(path, 'cream_14')                 # the given one has 1000 classes: the file's win
    assert got == arch
    with pytest.raises(CheckpointError, match=r'embeds arch .* but --arch names .*; drop it'):
        load_subnet(path, 'cream_43', given_as='--arch names', fix='drop it')
    with pytest.raises(CheckpointError, match='but the config asks for'):
        load_subnet(path, 'cream_14', head=True, given_as='the config asks for')
    bare = tmp_path / 'bare.pth'
    torch.save({'state_dict': build_subnet(arch).state_dict()}, bare)
    with pytest.raises(CheckpointError, match='embeds no arch; pass --arch'):
        load_subnet(bare, missing='pass --arch')
    assert load_subnet(bare, missing=None)[0] is None


def test_latest_checkpoint(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for n in (2, 10):
        torch.save({'n': n}, tmp_path / f'epoch_{n}.pth')
    (tmp_path / 'epoch_x.pth').write_bytes(b'')
    assert latest_checkpoint(tmp_path) == tmp_path / 'epoch_10.pth'         # by number, not by name
    (tmp_path / 'last_checkpoint').write_text('/elsewhere/before/a/move/epoch_2.pth')
    assert latest_checkpoint(tmp_path) == tmp_path / 'epoch_2.pth'          # the marker, found by file name
    (tmp_path / 'epoch_2.pth').write_bytes(b'truncated')
    assert latest_checkpoint(tmp_path) == tmp_path / 'epoch_2.pth'
    assert latest_checkpoint(tmp_path, intact=True) == tmp_path / 'epoch_10.pth'


def test_finished_search_reader(tmp_path):
    assert read_search(tmp_path).summary is None and read_search(tmp_path).checkpoint is None
    write_summary(tmp_path, {'macs_range': [1e6, 2e6], 'supernet_depths': [2, 3], 'final_pick': 'board'})
    torch.save({}, tmp_path / 'epoch_1.pth')
    s = read_search(tmp_path)
    assert (s.macs_range, s.depths, s.checkpoint) == ((1e6, 2e6), (2, 3), tmp_path / 'epoch_1.pth')
    with pytest.raises(CheckpointError, match='supernet checkpoint not found'):
        read_search(tmp_path, tmp_path / 'none.pth')
    with pytest.raises(ConfigError, match='expected the one config a search dumps'):
        s.config()                                                          # none dumped here
    (tmp_path / 'search_summary.json').write_text(json.dumps({'macs_range': [1]}))
    with pytest.raises(ConfigError, match='search_summary.json: unreadable'):
        read_summary(tmp_path)
