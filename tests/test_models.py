"""Subnet builder, zoo registration in timm, official-checkpoint conversion."""
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

import cream_det  # noqa: F401  (registers the zoo in timm)
from cream_det.errors import ArchError, CheckpointError
from cream_det.models import build, build_subnet, feature_channels
from cream_det.models.checkpoint import load_weights, read_checkpoint
from cream_det.models.convert import convert_official
from cream_det.space import Arch, ZOO, get_arch

FIX = Path(__file__).parent / 'fixtures' / 'official_cream_14'
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('name', list(ZOO))
def test_timm_create_model(name):
    m = timm.create_model(name)
    assert sum(p.numel() for p in m.parameters()) == get_arch(name).params
    assert m.pretrained_cfg['input_size'] == (3, ZOO[name].resolution, ZOO[name].resolution)
    assert m.cream_arch == get_arch(name)


def test_zoo_files_are_the_official_choice_lists():
    for name, e in ZOO.items():
        assert get_arch(name) == Arch.from_choice_list(e.choices, e.resolution)


def test_build_accepts_name_file_and_arch(tmp_path):
    a = get_arch('cream_43')
    p = a.save(tmp_path / 'a.yaml')
    for spec in ('cream_43', p, str(p), a):
        assert build(spec).cream_arch == a
    with pytest.raises(ArchError, match='valid names: cream_14'):
        get_arch('cream_999')
    with pytest.raises(ArchError, match="neither a published net"):
        build('cream_999')


def test_pretrained_true_is_refused_not_silently_random():
    with pytest.raises(CheckpointError, match='no weights can be downloaded'):
        timm.create_model('cream_14', pretrained=True)


@pytest.mark.parametrize('name', ['cream_14', 'cream_287', 'cream_604'])
def test_features_strides_and_channels(name):
    arch = get_arch(name)
    m = build_subnet(arch, features_only=True, out_indices=(1, 2, 3, 4)).eval()
    r = 128
    outs = m(torch.zeros(1, 3, r, r))
    assert [o.shape[1] for o in outs] == [24, 40, 96, 320] == list(feature_channels(arch)[1:])
    assert [r // o.shape[-1] for o in outs] == [4, 8, 16, 32]
    assert m.feature_info.reduction() == [4, 8, 16, 32]


def _official_logits_ok(model):
    x = torch.load(FIX / 'input.pth', weights_only=True)
    ref = torch.load(FIX / 'logits.pth', weights_only=True)
    with torch.no_grad():
        out = model.eval()(x)
    return (out - ref).abs().max().item()


def test_converted_official_checkpoint_reproduces_authors_logits(tmp_path):
    dst = convert_official(FIX / 'cream_14_official_layout.pth', tmp_path / 'c14.pth', 'cream_14')
    ck = read_checkpoint(dst)
    assert Arch.from_dict(ck['meta']['cream_arch']) == get_arch('cream_14')
    assert not any(k.startswith('module.') for k in ck['state_dict'])
    model = load_weights(build('cream_14'), dst)
    assert _official_logits_ok(model) < 1e-5
    # the EMA copy is selectable too (identical in this fixture)
    dst2 = convert_official(FIX / 'cream_14_official_layout.pth', tmp_path / 'c14e.pth', 'cream_14', use_ema=True)
    assert _official_logits_ok(load_weights(build('cream_14'), dst2)) < 1e-5


def test_wrong_arch_names_first_mismatching_keys(tmp_path):
    with pytest.raises(CheckpointError) as e:
        convert_official(FIX / 'cream_14_official_layout.pth', tmp_path / 'x.pth', 'cream_43')
    msg = str(e.value)
    assert 'blocks.2.1.conv_dw.weight' in msg and 'missing key' in msg
    assert not (tmp_path / 'x.pth').exists()


def test_corrupt_and_missing_checkpoints(tmp_path):
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='not a readable PyTorch checkpoint'):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match='not found'):
        read_checkpoint(tmp_path / 'none.pth')


def test_embedded_arch_must_agree(tmp_path):
    dst = convert_official(FIX / 'cream_14_official_layout.pth', tmp_path / 'c14.pth', 'cream_14')
    with pytest.raises(CheckpointError, match='differs from the model'):
        load_weights(build('cream_43'), dst)


def test_convert_cli(tmp_path):
    dst = tmp_path / 'out.pth'
    ok = subprocess.run([sys.executable, str(ROOT / 'tools/convert_official.py'),
                         str(FIX / 'cream_14_official_layout.pth'), str(dst), '--arch', 'cream_14'],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert dst.is_file()
    bad = subprocess.run([sys.executable, str(ROOT / 'tools/convert_official.py'),
                          str(FIX / 'cream_14_official_layout.pth'), str(dst), '--arch', 'cream_nope'],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and 'error:' in bad.stderr and 'Traceback' not in bad.stderr


def _convert_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location('_convert_official', ROOT / 'tools/convert_official.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_converter_takes_the_ema_weights_by_default_and_says_so(tmp_path, capsys):
    """The published accuracies are of state_dict_ema; --raw takes state_dict; without an EMA copy
    the default takes state_dict and says why, and --use-ema then refuses."""
    ck = torch.load(FIX / 'cream_14_official_layout.pth', weights_only=True)
    key = next(k for k in ck['state_dict_ema'] if k.endswith('conv_stem.weight'))
    ck['state_dict_ema'] = {k: v + 1.0 if k == key else v for k, v in ck['state_dict_ema'].items()}
    both, raw_only = tmp_path / 'both.pth', tmp_path / 'raw_only.pth'
    torch.save(ck, both)
    torch.save({k: v for k, v in ck.items() if k != 'state_dict_ema'}, raw_only)
    tool = _convert_tool()

    def convert(src, *flags):
        dst = tmp_path / f'out_{src.stem}{"".join(flags)}.pth'
        tool.main([str(src), str(dst), '--arch', 'cream_14', *flags])
        return capsys.readouterr().out, read_checkpoint(dst)

    msg, out = convert(both)
    assert torch.equal(out['state_dict']['conv_stem.weight'], ck['state_dict_ema'][key])
    assert out['meta']['weights'] == 'state_dict_ema' and 'took the EMA weights (state_dict_ema)' in msg
    msg, out = convert(both, '--raw')
    assert torch.equal(out['state_dict']['conv_stem.weight'], ck['state_dict'][key])
    assert out['meta']['weights'] == 'state_dict' and 'took the raw weights (state_dict, --raw)' in msg
    msg, out = convert(raw_only)
    assert torch.equal(out['state_dict']['conv_stem.weight'], ck['state_dict'][key])
    assert 'the checkpoint has no state_dict_ema' in msg
    msg, out = convert(both, '--use-ema')                   # kept: requires the EMA copy
    assert out['meta']['weights'] == 'state_dict_ema'
    with pytest.raises(CheckpointError, match='no EMA weights'):
        convert(raw_only, '--use-ema')
    with pytest.raises(SystemExit):
        convert(both, '--raw', '--use-ema')
    assert 'not allowed with' in capsys.readouterr().err
