"""Former home of the Swin checkpoint loader of the hybrid; it lives in :mod:`mmmixer.checkpoint.swin`."""
from mmmixer.checkpoint.swin import SwinLoadReport, load_swin_pretrained, resize_bias_table

__all__ = ['SwinLoadReport', 'load_swin_pretrained', 'resize_bias_table']
