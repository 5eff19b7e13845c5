"""Test helper imported by training subprocesses (``custom_imports``): records every rank's training losses.

mmengine logs rank 0's loss only (the mean over its own part of the global batch), so a test that compares
multi-process training with one process needs every rank's loss. Registered in mmengine's root ``HOOKS``
registry under a test-only name (this module is never imported by the package).
"""
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class MmmixerTestLossProbeHook(Hook):
    """Writes ``{work_dir}/losses_rank{rank}.json``: the loss and batch size of every training iteration."""

    def __init__(self):
        self.records = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.records.append(dict(iter=runner.iter, loss=float(outputs['loss']),
                                 batch=len(data_batch['data_samples'])))

    def after_train(self, runner):
        with open(osp.join(runner.work_dir, f'losses_rank{get_rank()}.json'), 'w') as f:
            json.dump(self.records, f)
