"""Convert an official MS-MLP checkpoint (JegZheng/MS-MLP) into an mmmixer checkpoint.

    python tools/model_converters/msmlp_to_mmmixer.py SRC DST [--use-ema]

SRC is the file the official training code saves (``{'model': state_dict, 'config': <yacs CfgNode>, ...}``).
It is read without executing anything from the file (pickled non-tensor objects become inert placeholders).
DST gets ``{'state_dict': {'backbone.*': ..., 'head.fc.*': ...}, 'meta': {...}}``: it loads with
``load_from=DST`` into the classifier of ``configs/msmlp/msmlp-*_8xb128_in1k.py`` and with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')`` into det/seg backbones, e.g.

    python tools/model_converters/msmlp_to_mmmixer.py msmlp_tiny_patch4_ckpt_epoch299.pth \
        checkpoints/msmlp-tiny_in1k.pth

(The det/seg configs can also take the official file or URL directly: it is converted on load.)
"""
import os.path as osp
import sys

# Run from a source checkout, use that checkout's mmmixer (not an older installed copy); an installed copy of this
# tool (mmmixer/.mim/tools/...) finds no checkout two levels up and uses the installed package.
_REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from mmmixer.models.backbones.ms_mlp import OFFICIAL, convert_official_msmlp  # noqa: E402
from mmmixer.checkpoint import converter_main  # noqa: E402


def main(argv=None):
    converter_main(OFFICIAL, convert_official_msmlp, __doc__, argv,
                   weights_arg=('--use-ema', 'model_ema',
                                "take the 'model_ema' weights (present only if trained with --model_ema)"),
                   label=lambda r: f'MS-MLP arch {r["arch"]}')


if __name__ == '__main__':
    main()
