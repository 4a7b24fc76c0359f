"""configs/ laid out as mmdet's: shared blocks live once in ``configs/_base_``, and the COCO detector
configs are mmdet's own ResNet-50 / EfficientNet-B3 configs with only the backbone swapped.

Engine-free and fast: configs are only parsed (``Config.fromfile``), nothing is built.
"""
import hashlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs'
WINDOW = 6          # identical non-blank, non-comment lines that count as one block written twice


def _code_lines(path: Path) -> list[str]:
    return [s for s in (line.strip() for line in path.read_text().splitlines()) if s and not s.startswith('#')]


def repeated_blocks(paths: list[Path], root: Path = ROOT, window: int = WINDOW) -> list[tuple[str, str, str]]:
    """(file, other file, first line) for every ``window``-line block that two files share verbatim
    (leading white space and comment lines ignored)."""
    first_seen: dict[str, Path] = {}
    found = []
    for path in paths:
        lines = _code_lines(path)
        reported = set()
        for i in range(len(lines) - window + 1):
            key = hashlib.sha1('\n'.join(lines[i:i + window]).encode()).hexdigest()
            other = first_seen.setdefault(key, path)
            if other != path and other not in reported:
                reported.add(other)
                found.append((str(path.relative_to(root)), str(other.relative_to(root)), lines[i]))
    return found


def test_repeated_block_finder_finds_a_copied_block(tmp_path):
    """The check itself: a block copied into a second file (re-indented, comments between) is found;
    five shared lines are not."""
    block = [f"x{i} = dict(a={i}, b='{i}')" for i in range(6)]
    a = tmp_path / 'a.py'
    a.write_text('\n'.join(['y = 1'] + block) + '\n')
    b = tmp_path / 'b.py'
    b.write_text('\n'.join(['z = 2'] + ['    ' + block[0], '# note', ''] + ['  ' + s for s in block[1:]]) + '\n')
    c = tmp_path / 'c.py'
    c.write_text('\n'.join(block[:5] + ['w = 3'] + block[:5]) + '\n')
    assert repeated_blocks([a, b], tmp_path) == [('b.py', 'a.py', block[0])]
    assert repeated_blocks([a, c], tmp_path) == []


def test_no_block_is_written_twice_across_configs():
    """Issue 33: the digits data, the demo schedule, the backbone swap... each is written once."""
    found = repeated_blocks(sorted(CONFIGS.rglob('*.py')))
    assert not found, '\n'.join(f'{a} repeats {b} from the line {line!r}: move the block to configs/_base_'
                                for a, b, line in found)


# ---- the COCO recipes are mmdet's own, backbone aside ----------------------------------------------------
def _unscoped(x):
    """mmengine marks what it read from an ``mmdet::`` file with ``_scope_='mmdet'``; the default scope
    (mmdet's default_runtime) builds the same thing without it."""
    if isinstance(x, dict):
        return {k: _unscoped(v) for k, v in x.items() if k != '_scope_'}
    if isinstance(x, (list, tuple)):
        return type(x)(_unscoped(v) for v in x)
    return x


def _without_backbone(cfg) -> dict:
    d = _unscoped(cfg.to_dict())
    for helper in ('custom_imports', 'cream_backbone', 'checkpoint', 'norm_cfg'):   # variables, not settings
        d.pop(helper, None)
    d['model'].pop('backbone')
    for key in ('type', 'in_channels'):         # CreamFPN(in_channels='auto') is mmdet's FPN on the backbone's widths
        d['model']['neck'].pop(key)
    return d


MMDET_TWINS = {
    'retinanet/_cream_fpn_1x_coco.py': 'retinanet/retinanet_r50_fpn_1x_coco.py',
    'faster_rcnn/_cream_fpn_1x_coco.py': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'fcos/_cream_fpn_gn-head_1x_coco.py': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'retinanet/_cream_fpn_8xb4-crop896-1x_coco.py': 'efficientnet/retinanet_effb3_fpn_8xb4-crop896-1x_coco.py',
}


@pytest.mark.parametrize('ours, theirs', MMDET_TWINS.items(), ids=list(MMDET_TWINS))
def test_coco_configs_are_mmdets_own_but_for_the_backbone(ours, theirs):
    """Everything a Runner reads (data, pipelines, schedule, optimizer, runtime, heads, losses, test
    settings) equals mmdet's config of the same recipe; only the backbone and the FPN's input widths
    differ (and FCOS's normalisation: Cream's weights expect RGB ImageNet mean/std, not caffe's)."""
    from mmengine.config import Config
    a = _without_backbone(Config.fromfile(str(CONFIGS / ours)))
    import mmdet
    b = _without_backbone(Config.fromfile(str(Path(mmdet.__file__).parent / '.mim' / 'configs' / theirs)))
    assert a.pop('custom_hooks') == [dict(type='FiniteLossHook')]    # ours: docs/faults.md
    assert 'custom_hooks' not in b
    if ours.startswith('fcos/'):
        pre = a['model'].pop('data_preprocessor')
        assert pre['bgr_to_rgb'] and pre['std'] == [58.395, 57.12, 57.375]
        b['model'].pop('data_preprocessor')
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key


def test_backbone_is_defined_once():
    """Every COCO detector takes the backbone swap from configs/_base_/models/cream_backbone.py."""
    from mmengine.config import Config
    shared = Config.fromfile(str(CONFIGS / '_base_/models/cream_backbone.py')).cream_backbone
    for ours in MMDET_TWINS:
        backbone = Config.fromfile(str(CONFIGS / ours)).model.backbone
        assert backbone.type == 'CreamBackbone'
        if 'crop896' not in ours:
            assert backbone == {k: v for k, v in shared.items() if k != '_delete_'}, ours
