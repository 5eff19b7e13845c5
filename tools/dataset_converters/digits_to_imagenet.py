"""Write scikit-learn's bundled handwritten digits as an ImageNet-style folder dataset (no download).

    python tools/dataset_converters/digits_to_imagenet.py data/digits [--size 32] [--val-ratio 0.2] [--seed 0]
"""
import argparse
import os.path as osp
import sys

# Run from a source checkout, use that checkout's mmmixer (not an older installed copy); an installed copy of this
# tool (mmmixer/.mim/tools/...) finds no checkout two levels up and uses the installed package.
_REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from mmmixer.datasets import make_digits_folder  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='output directory')
    parser.add_argument('--size', type=int, default=32, help='image side in pixels (default 32)')
    parser.add_argument('--val-ratio', type=float, default=0.2, help='validation fraction (default 0.2)')
    parser.add_argument('--seed', type=int, default=0, help='split seed (default 0)')
    parser.add_argument('--overwrite', action='store_true', help='rewrite an existing dataset')
    args = parser.parse_args(argv)
    info = make_digits_folder(args.root, args.size, args.val_ratio, args.seed, args.overwrite)
    print(f'digits: {info["num_train"]} train / {info["num_val"]} val images of {args.size}x{args.size} '
          f'px in {args.root}')


if __name__ == '__main__':
    main()
