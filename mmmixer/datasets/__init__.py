"""Small real datasets built from data that ships with installed packages (no download)."""
from .digits import make_digits_ade20k, make_digits_coco, make_digits_folder

__all__ = ["make_digits_folder", "make_digits_coco", "make_digits_ade20k"]
