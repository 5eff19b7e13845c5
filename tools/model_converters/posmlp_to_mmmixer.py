"""Convert an official PosMLP checkpoint (Zhicaiwww/PosMLP) into an mmmixer checkpoint.

    python tools/model_converters/posmlp_to_mmmixer.py SRC DST [--use-non-ema]

SRC is the file the official (timm) training code saves: ``{'state_dict': ..., 'state_dict_ema': ...,
'args': <argparse Namespace>, ...}``. The official loaders read the EMA weights (``state_dict_ema``), and so does
this tool unless ``--use-non-ema`` is given. The file is read without executing anything from it (pickled
non-tensor objects become inert placeholders). DST gets ``{'state_dict': {'backbone.*': ..., 'head.fc.*': ...},
'meta': {...}}``; ``meta`` records the architecture to build (``arch``, ``window_size``, ``pos_type``,
``generalized``). It loads with ``load_from=DST`` into the classifier of ``configs/posmlp/posmlp-*_8xb128_in1k.py``
and with ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')`` into det/seg backbones (other
window sizes too: the positional tables are resized on load), e.g.

    python tools/model_converters/posmlp_to_mmmixer.py PosMLP_T.pth checkpoints/posmlp-tiny_in1k.pth
"""
import os.path as osp
import sys

# Run from a source checkout, use that checkout's mmmixer (not an older installed copy); an installed copy of this
# tool (mmmixer/.mim/tools/...) finds no checkout two levels up and uses the installed package.
_REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from mmmixer.models.backbones.pos_mlp import OFFICIAL, convert_official_posmlp  # noqa: E402
from mmmixer.checkpoint import converter_main  # noqa: E402


def main(argv=None):
    converter_main(OFFICIAL, convert_official_posmlp, __doc__, argv,
                   weights_arg=('--use-non-ema', 'state_dict',
                                "take the raw 'state_dict' weights instead of the EMA weights 'state_dict_ema'"),
                   label=lambda r: f'PosMLP ({r["pos_type"]}) arch {r["arch"]}')


if __name__ == '__main__':
    main()
