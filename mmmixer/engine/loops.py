"""An epoch-based training loop that resumes bit-exactly from any checkpoint, even one written mid-epoch.

Why mmengine 0.10.7's ``EpochBasedTrainLoop`` does not resume exactly (measured on the digits demo, see
``tests/test_e2e/test_resume_kill.py`` and ``docs/reproducibility.md``):

1. **Already-seen batches are trained again.** Resuming from an iteration checkpoint written in the middle of
   epoch ``e`` restarts epoch ``e`` from its first batch (only ``IterBasedTrainLoop`` skips batches), so the
   resumed run trains more iterations than the uninterrupted one.
2. **The main-process random streams restart.** ``Runner`` seeds ``torch`` / ``numpy`` / ``random`` once from
   ``randomness.seed`` and never saves their state, so after a resume the drop-path masks (torch) and, with
   ``num_workers=0``, the data augmentation (numpy, e.g. mmpretrain's ``RandomCrop``) continue from the seed's
   initial state instead of where the killed run was.
3. **Persistent data workers restart their streams.** mmengine seeds each worker once, from
   ``seed + worker_id + num_workers * rank``; with ``persistent_workers=True`` a worker's stream then runs on
   across epochs, and a resumed run's fresh workers start it again from the beginning.

:class:`ExactResumeEpochBasedTrainLoop` removes all three causes instead of saving and restoring generator
states: every random number is drawn from a generator seeded by *where* it is used, so there is no state to lose.

* before each training iteration ``i`` the main process seeds ``torch`` (all devices), ``numpy`` and ``random``
  with ``mix_seed(seed, 1, i)`` (drop path, dropout, batch augmentations in the data preprocessor);
* every sample's transforms run with ``numpy`` / ``random`` / ``torch`` (CPU) seeded by
  ``mix_seed(seed, 2, epoch, dataset index)``, in whichever process loads it (the sampler hands the seed to the
  worker together with the index, see :class:`SeededIndex`), so augmentation does not depend on
  ``num_workers``, ``persistent_workers``, worker restarts or the number of processes;
* a resumed epoch first advances the data loader past the batches the checkpoint has already trained on (as
  mmengine's ``IterBasedTrainLoop`` does), checked against ``iters_per_epoch`` stored in the checkpoint.

``seed`` is ``runner.seed`` (``randomness.seed``; with ``diff_rank_seed=True`` it includes the rank). The
checkpoint's ``meta['exact_resume']`` holds only ints and a str, so checkpoints still load with
``weights_only=True`` through :func:`mmmixer.checkpoint.safe_load.safe_torch_load`.

Use it in a config in place of ``by_epoch=True``::

    train_cfg = dict(type='mmmixer.ExactResumeEpochBasedTrainLoop', max_epochs=40, val_interval=10)

Limits: the per-sample seeding needs map-style datasets (indexed by int, as every mmengine ``BaseDataset``) and a
batch sampler with a ``sampler`` attribute (torch's ``BatchSampler``, mmdet's ``AspectRatioBatchSampler``);
gradient accumulation (``accumulative_counts > 1``) resumes exactly only from checkpoints at accumulation
boundaries; results are bit-exact for the same machine, thread count and library versions (floating-point
kernels may differ elsewhere).
"""
import logging
import random
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import get_worker_info

from mmmixer.registry import LOOPS

__all__ = ['ExactResumeEpochBasedTrainLoop', 'SeededIndex', 'SeededSampler', 'mix_seed']

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
#: stream tags of :func:`mix_seed`, so that iteration seeds and sample seeds never coincide
ITER_STREAM, SAMPLE_STREAM = 1, 2


def mix_seed(*values: int) -> int:
    """A well-mixed 63-bit seed from integers (a chain of SplitMix64 finalisers), the same on every platform.

    Args:
        *values (int): e.g. ``(seed, stream, epoch, index)``; negative values are taken modulo 2**64.

    Returns:
        int: in ``[0, 2**63)``.
    """
    h = _GOLDEN
    for v in values:
        h = ((h ^ (int(v) & _MASK64)) + _GOLDEN) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h >> 1


def _seed_host_generators(seed: int) -> None:
    """Seed ``random``, ``numpy``'s global generator and torch's CPU generator (not the CUDA ones)."""
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.default_generator.manual_seed(seed)


class SeededIndex(int):
    """A dataset index (an ``int``) that carries the seed of its sample's random transforms (``rng_seed``).

    Made by :class:`SeededSampler` in the main process and sent to data workers with the batch's indices; it
    pickles as ``SeededIndex(value, rng_seed)``.
    """

    def __new__(cls, value: int, rng_seed: int):
        obj = super().__new__(cls, value)
        obj.rng_seed = rng_seed
        return obj

    def __reduce__(self):
        return SeededIndex, (int(self), self.rng_seed)

    def __repr__(self):
        return f'SeededIndex({int(self)}, rng_seed={self.rng_seed})'


class SeededSampler:
    """Wraps a sampler; yields its indices as :class:`SeededIndex` with ``mix_seed(seed, 2, epoch, index)``.

    The seed depends on the dataset index and the epoch only, not on the position in the epoch, the rank or the
    worker, so a sample is augmented the same way whatever the batch size, number of processes or workers.
    ``epoch`` and ``seed`` are set by :class:`ExactResumeEpochBasedTrainLoop` before each epoch; other attributes
    (``set_epoch``, ``dataset``, ...) are those of the wrapped sampler.
    """

    def __init__(self, sampler, seed: int, epoch: int = 0):
        self.sampler = sampler
        self.seed = seed
        self.epoch = epoch

    def __iter__(self):
        seed, epoch = self.seed, self.epoch
        for index in self.sampler:
            yield SeededIndex(index, mix_seed(seed, SAMPLE_STREAM, epoch, index))

    def __len__(self) -> int:
        return len(self.sampler)

    def __getattr__(self, name: str) -> Any:
        if name == 'sampler':  # not set yet (copy / unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.sampler, name)


class _SeededGetItems:
    """``dataset.__getitems__`` (torch's batched fetch protocol): loads each sample with its own seeds.

    Indices that are :class:`SeededIndex` seed ``random`` / ``numpy`` / torch's CPU generator before the sample is
    loaded and transformed; the dataset then sees a plain ``int``. In the main process (``num_workers=0``) the
    generator states are restored afterwards, so loading data leaves the training streams untouched.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __call__(self, indices: Sequence[int]) -> List[Any]:
        saved = None
        if get_worker_info() is None:
            saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        try:
            samples = []
            for index in indices:
                rng_seed = getattr(index, 'rng_seed', None)
                if rng_seed is not None:
                    _seed_host_generators(rng_seed)
                    index = int(index)
                samples.append(self.dataset[index])
            return samples
        finally:
            if saved is not None:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])


class _ExactResumeMetaHook(Hook):
    """Writes ``meta['exact_resume']`` into checkpoints and hands it to the loop when one is loaded."""

    priority = 'VERY_LOW'

    def __init__(self, loop: 'ExactResumeEpochBasedTrainLoop'):
        self.loop = loop

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['exact_resume'] = dict(
            version=1, iters_per_epoch=len(self.loop.dataloader), seed=int(runner.seed))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.loop.resume_meta = (checkpoint.get('meta') or {}).get('exact_resume')


@LOOPS.register_module()
class ExactResumeEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` with position-seeded randomness and mid-epoch resume (see module doc).

    A run resumed (``--resume``) from any checkpoint of a run with this loop, epoch or iteration checkpoint, ends
    with the same weights and optimizer state, bit for bit, as the uninterrupted run (same machine and
    versions). Uninterrupted runs are as random as with mmengine's loop, but draw different numbers.

    Args:
        runner (Runner), dataloader (DataLoader | dict), max_epochs (int), val_begin (int), val_interval (int),
            dynamic_intervals (list, optional): as mmengine's ``EpochBasedTrainLoop``.

    Raises:
        TypeError: the data loader has no batch sampler with a ``sampler`` attribute (iterable datasets).
        RuntimeError: on resume, the checkpoint was written with another number of iterations per epoch (batch
            size, dataset or number of processes changed), so the batches to skip are unknown.
    """

    def __init__(self, runner, dataloader, max_epochs: int, val_begin: int = 1, val_interval: int = 1,
                 dynamic_intervals: Optional[List] = None) -> None:
        super().__init__(runner, dataloader, max_epochs, val_begin, val_interval, dynamic_intervals)
        batch_sampler = getattr(self.dataloader, 'batch_sampler', None)
        if batch_sampler is None or not hasattr(batch_sampler, 'sampler'):
            raise TypeError('ExactResumeEpochBasedTrainLoop: the train data loader needs a batch sampler with a '
                            f'`sampler` attribute (map-style dataset), got {type(batch_sampler).__name__}.')
        self.seeded_sampler = SeededSampler(batch_sampler.sampler, seed=self.runner.seed)
        batch_sampler.sampler = self.seeded_sampler
        dataset = self.dataloader.dataset
        if getattr(type(dataset), '__getitems__', None) is not None:
            raise TypeError(f'ExactResumeEpochBasedTrainLoop: {type(dataset).__name__} defines its own '
                            '__getitems__ (batched loading); per-sample seeding needs index-by-index loading.')
        dataset.__getitems__ = _SeededGetItems(dataset)
        self.resume_meta: Optional[Dict[str, int]] = None
        self.runner.register_hook(_ExactResumeMetaHook(self))

    def _batches_done(self) -> int:
        """Batches of the current epoch already trained (non-zero only right after a mid-epoch resume)."""
        per_epoch = len(self.dataloader)
        saved = (self.resume_meta or {}).get('iters_per_epoch')
        if saved is not None and saved != per_epoch:
            raise RuntimeError(
                f'ExactResumeEpochBasedTrainLoop: the checkpoint was written with {saved} iterations per epoch, '
                f'this run has {per_epoch} (batch size, dataset or number of processes changed); cannot tell '
                'which batches were trained. Resume with the original settings.')
        done = self._iter - self._epoch * per_epoch
        if not 0 <= done <= per_epoch:
            raise RuntimeError(
                f'ExactResumeEpochBasedTrainLoop: iteration {self._iter} is not in epoch {self._epoch + 1} of '
                f'{per_epoch} iterations; the checkpoint does not belong to this data loader.')
        return done

    def run_epoch(self) -> None:
        """Iterate one epoch, skipping the batches a mid-epoch checkpoint has already trained on."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self._batches_done()
        self.seeded_sampler.seed = self.runner.seed
        self.seeded_sampler.epoch = self._epoch
        if done < len(self.dataloader):
            iterator = iter(self.dataloader)
            if done:
                print_log(f'Advance dataloader {done} steps to skip data that has already been trained in epoch '
                          f'{self._epoch + 1}', logger='current', level=logging.WARNING)
                for _ in range(done):
                    next(iterator)
            for idx, data_batch in enumerate(iterator, start=done):
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        """Seed the main-process generators from (seed, iteration), then run mmengine's iteration."""
        seed = mix_seed(self.runner.seed, ITER_STREAM, self._iter)
        random.seed(seed)
        np.random.seed(seed & 0xFFFFFFFF)
        torch.manual_seed(seed)  # CPU and every CUDA device
        super().run_iter(idx, data_batch)
