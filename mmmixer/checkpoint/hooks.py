"""The checkpoint side of every mmmixer backbone: :class:`CheckpointHooks`, a mixin of ``MixerBackbone``.

The functions of this package call these hooks on the backbone they load (:func:`~.pretrained.load_pretrained`,
:func:`~.fit.check_state_dict_fits`); a family overrides the ones it needs and keeps each one's contract: the same
arguments, the same meaning of the return value, and :class:`CheckpointLoadError` for a checkpoint that does not fit.
"""
import re
from typing import Any, Dict, List, Optional, Sequence

from .fit import check_state_dict_fits
from .pretrained import init_with_pretrained
from .trust import CheckpointLoadError

__all__ = ['CheckpointHooks']


class CheckpointHooks:
    """Checkpoint hooks and their defaults; mixed into ``MixerBackbone`` before mmengine's ``BaseModule``.

    Class attributes:
        official (OfficialConverter, optional): the family's official checkpoint layout, set after the class
            (``OFFICIAL = <Backbone>.official = OfficialConverter(...)``); a ``Pretrained`` checkpoint in that
            layout is converted on load (:meth:`convert_official`).
        default_init_cfg (list[dict], optional): the family's default initialisation.
        init_before_pretrained (bool): apply ``default_init_cfg`` before a ``Pretrained`` load (for families whose
            checkpoints may leave whole blocks new, e.g. the hybrid's MS blocks from a Swin checkpoint); otherwise,
            as with mmengine's ``PretrainedInit``, tensors absent from the checkpoint keep their construction-time
            values.
        _arch_fields (tuple[str]): attributes shown as "the arch" in checkpoint errors.
        _dropped_on_load (tuple[str]): checkpoint key suffixes the backbone drops on load (derived buffers).
    """
    official = None
    default_init_cfg: Optional[list] = None
    init_before_pretrained = False
    _arch_fields: Sequence[str] = ('embed_dims', 'depths', 'in_channels')
    _dropped_on_load: Sequence[str] = ()

    def arch_repr(self) -> str:
        """E.g. ``'MSMLP(embed_dims=[32, 64, 128, 256], depths=[1, 1, 2, 1], in_channels=3)'``."""
        fields = ', '.join(f'{name}={getattr(self, name)!r}' for name in self._arch_fields if hasattr(self, name))
        return f'{type(self).__name__}({fields})'

    def _tolerate_on_load(self, key: str, checkpoint_tensor: Any, model_tensor: Any) -> bool:
        """Whether a shape difference of ``key`` is adapted on load (none by default)."""
        return False

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a checkpoint file of another arch: one clear error instead of mmengine's silent partial load
        check_state_dict_fits(self, state_dict, prefix, self.arch_repr(), ignore_unexpected=self._dropped_on_load,
                              tolerate=self._tolerate_on_load)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def convert_official(cls, state_dict: dict) -> dict:
        """Convert an official state dict (``cls.official`` layout) with the function the family registered
        (:meth:`~.converter.OfficialConverter.converts`): ``dict(state_dict=..., arch=..., ...)``.

        Raises:
            NotImplementedError: the family has no official layout (or registered no conversion).
            ValueError: see the family's ``convert_official_*`` function.
        """
        if cls.official is None or cls.official.convert is None:
            raise NotImplementedError(f'{cls.__name__} has no official checkpoint layout.')
        return cls.official.convert(state_dict)

    def _adapt_pretrained(self, state: Dict[str, Any]) -> Dict[str, Any]:
        """Rename / drop checkpoint tensors of older layouts before matching (prefix already stripped)."""
        return state

    def _derived_on_load(self, key: str) -> bool:
        """Model tensors computed from the configuration, never read from a checkpoint."""
        return False

    def _may_be_new(self, key: str) -> bool:
        """Model tensors that may be absent from a checkpoint: the output norms (a classifier has only the last)."""
        return re.match(r'norm\d+\.', key) is not None

    def _may_be_unused(self, key: str) -> bool:
        """Checkpoint tensors of this backbone's modules that the model may lack: other output norms."""
        return re.match(r'norm\d+\.', key) is not None

    def _raise_pretrained_mismatch(self, name: str, plan: Any, problems: List[str]) -> None:
        """Raise :class:`CheckpointLoadError` for a strict ``Pretrained`` load that does not fit; nothing is copied.

        Args:
            name (str): how to name the checkpoint (path, URL or 'the checkpoint dict').
            plan: the matching of :func:`~.pretrained.plan_load` (``plan.report.prefix``, ``plan.mismatched``, ...).
            problems (list[str]): one sentence per kind of mismatch; an override must keep them in its message.
        """
        raise CheckpointLoadError(
            f'Checkpoint "{name}" does not fit {self.arch_repr()} (keys under prefix {plan.report.prefix!r}): '
            + '; '.join(problems) + '. Nothing was loaded into the backbone. Use a checkpoint of this arch'
            + (f' (official {self.official.family} files are converted on load)' if self.official else '')
            + ", or set the backbone's arch to the checkpoint's.")

    def init_weights(self):
        """Initialise; a ``Pretrained`` entry of ``init_cfg`` is loaded by :func:`mmmixer.checkpoint.pretrained.
        load_pretrained` after the other entries (or the family's default init) ran: official checkpoints are
        converted in memory, the split into loaded / new / unused tensors is logged and kept in
        ``self.pretrained_report``.

        Raises:
            ValueError: more than one ``Pretrained`` entry.
            FileNotFoundError / CheckpointLoadError: see :func:`~mmmixer.checkpoint.pretrained.load_pretrained`.
        """
        if not init_with_pretrained(self, super().init_weights):
            super().init_weights()
