"""Packaging for cream_det.

The OpenMMLab stack is deliberately *not* in ``install_requires``: two forks (OneDL and upstream)
provide the same import names and must never be installed together, and mmcv has to be compiled
for recent torch. ``tools/setup_env.sh`` installs the right one; a user who already has either
stack can ``pip install -e .`` on top of it.
"""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def _version() -> str:
    scope: dict = {}
    exec((ROOT / 'cream_det' / 'version.py').read_text(), scope)
    return scope['__version__']


setup(
    name='cream_det',
    version=_version(),
    description='Cream one-shot NAS (prioritized paths) with searched backbones for mmdet RetinaNet',
    long_description=(ROOT / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    python_requires='>=3.10,<3.13',
    packages=find_packages(include=['cream_det', 'cream_det.*']),
    package_data={'cream_det': ['space/archs/*.json']},
    install_requires=[
        'torch>=2.4',
        'torchvision',
        'timm==1.0.31',
        'pycocotools',
        'numpy',
        'pyyaml',
        'scikit-learn',
        'matplotlib',
    ],
    extras_require={
        'onedl': ['onedl-mmcv==2.3.6', 'onedl-mmengine==0.10.12', 'onedl-mmdetection==3.5.1'],
        'upstream': ['mmcv==2.1.0', 'mmengine==0.10.7', 'mmdet==3.3.0'],
        'tests': ['pytest>=8', 'fvcore==0.1.5.post20221221', 'onnx', 'onnxruntime'],
        # tools/export_onnx.py: the detector's tensor graph as ONNX, checked with onnxruntime
        'deploy': ['onnx', 'onnxruntime'],
    },
)
