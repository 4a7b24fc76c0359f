"""Embedded demo data (real handwritten digits in ImageNet and COCO layouts; generated cluttered shapes and
font glyphs for the strategy comparison) and dataset checks."""
from .coco_check import validate_coco
from .digits import make_coco_digits, make_imagenet_digits
from .glyphs import make_imagenet_glyphs
from .shapes import make_imagenet_shapes

__all__ = ['make_coco_digits', 'make_imagenet_digits', 'make_imagenet_glyphs', 'make_imagenet_shapes', 'validate_coco']
