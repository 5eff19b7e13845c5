"""Convert an official Strip-MLP checkpoint (Med-Process/Strip_MLP) into an mmmixer checkpoint.

    python tools/model_converters/stripmlp_to_mmmixer.py SRC DST

SRC is the file the official training code saves (``{'model': state_dict, ...}``; a bare state dict and MLP-DINO's
backbone weights with their ``proh_w`` spelling are accepted too). It is read without executing anything from the
file. DST gets ``{'state_dict': {'backbone.*': ..., 'head.fc.*': ...}, 'meta': {...}}``; ``meta`` records the
architecture to build (``arch``, ``img_size``, ``channel_patches``). It loads with ``load_from=DST`` into the
classifier of ``configs/stripmlp/stripmlp-*_8xb128_in1k.py`` and with ``init_cfg=dict(type='Pretrained',
checkpoint=DST, prefix='backbone.')`` into det/seg backbones, e.g.

    python tools/model_converters/stripmlp_to_mmmixer.py smlp_tiny.pth checkpoints/stripmlp-tiny_in1k.pth
"""
import os.path as osp
import sys

# Run from a source checkout, use that checkout's mmmixer (not an older installed copy); an installed copy of this
# tool (mmmixer/.mim/tools/...) finds no checkout two levels up and uses the installed package.
_REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from mmmixer.models.backbones.strip_mlp import OFFICIAL, convert_official_stripmlp  # noqa: E402
from mmmixer.checkpoint import converter_main  # noqa: E402


def main(argv=None):
    converter_main(OFFICIAL, convert_official_stripmlp, __doc__, argv,
                   label=lambda r: f'Strip-MLP arch {r["arch"]}')


if __name__ == '__main__':
    main()
