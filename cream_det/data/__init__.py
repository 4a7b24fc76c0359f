"""Embedded demo data (real handwritten digits in ImageNet and COCO layouts) and dataset checks."""
from .coco_check import validate_coco
from .digits import make_coco_digits, make_imagenet_digits

__all__ = ['make_coco_digits', 'make_imagenet_digits', 'validate_coco']
