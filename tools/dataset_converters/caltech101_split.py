"""Split Caltech-101 80/20 per class exactly as the Strip-MLP authors did (seed 1024), as train/val class folders.

    python tools/dataset_converters/caltech101_split.py SRC DST [--order {listdir,sorted}] [--copy]
                                                                [--keep-background] [--overwrite]

SRC is the extracted ``101_ObjectCategories`` folder (one sub-folder of images per class). DST receives
``train/<class>/<image>`` and ``val/<class>/<image>`` (symlinks to SRC, or copies with ``--copy``), the layout that
``configs/stripmlp/stripmlp-tiny_1xb128-300e_caltech101.py`` reads, plus ``meta/{train,val}.txt`` listing
``<class>/<image> <label>`` (label = index of the class in sorted order, as torchvision ``ImageFolder`` and
mmpretrain ``CustomDataset`` assign them).

The procedure is the official one (Med-Process/Strip_MLP ``categories101_train_val_split.py``): Python's ``random``
seeded with 1024 once; for every class folder in directory-listing order, the image names in directory-listing
order are shuffled with ``random.shuffle`` and the first ``int(0.8 * n)`` go to train, the rest to val. The same
RNG call sequence on the same listing reproduces the official file lists.

Listing order: the official script uses ``os.listdir``, whose order depends on the file system (ext4 hashes
names with a per-file-system seed), so the authors' exact lists cannot be recovered elsewhere. ``--order listdir``
(default) is the official behaviour; ``--order sorted`` sorts class and image names first, which gives the same
split on every machine (recommended for comparable results; state which one you used).

``BACKGROUND_Google`` (the clutter folder of the Caltech archive) is left out unless ``--keep-background``: the
official config trains a 101-class head, so the authors' folder cannot have contained it.
"""
import argparse
import os
import os.path as osp
import random
import shutil
import sys

BACKGROUND = 'BACKGROUND_Google'
SEED = 1024
TRAIN_RATIO = 0.8


def _listing(path, order):
    names = os.listdir(path)
    return sorted(names) if order == 'sorted' else names


def split_caltech101(src, order='listdir', keep_background=False, seed=SEED, train_ratio=TRAIN_RATIO):
    """The official per-class split of ``src`` (no file is written).

    Args:
        src (str): the ``101_ObjectCategories`` folder.
        order (str): 'listdir' (official: ``os.listdir`` order) or 'sorted'.
        keep_background (bool): include ``BACKGROUND_Google``.
        seed (int): ``random`` seed. Default 1024 (official).
        train_ratio (float): train fraction per class, floored. Default 0.8 (official).

    Returns:
        dict: ``classes`` (sorted class names) and ``train``/``val``: lists of ``(class, image)`` in split order.

    Raises:
        ValueError: ``order`` unknown, or ``src`` has no class folder.
        FileNotFoundError: ``src`` is not a directory.
    """
    if order not in ('listdir', 'sorted'):
        raise ValueError(f"order must be 'listdir' or 'sorted', got {order!r}.")
    if not osp.isdir(src):
        raise FileNotFoundError(f'{src} is not a directory (expected the extracted 101_ObjectCategories folder).')
    rng = random.Random(seed)  # the same stream as the official random.seed(1024) + random.shuffle
    classes = [c for c in _listing(src, order)
               if osp.isdir(osp.join(src, c)) and (keep_background or c != BACKGROUND)]
    if not classes:
        raise ValueError(f'{src} holds no class folder.')
    train, val = [], []
    for cls in classes:
        images = _listing(osp.join(src, cls), order)
        rng.shuffle(images)
        num = int(len(images) * train_ratio)
        train += [(cls, name) for name in images[:num]]
        val += [(cls, name) for name in images[num:]]
    return dict(classes=sorted(classes), train=train, val=val)


def write_split(split, src, dst, copy=False, overwrite=False):
    """Materialise ``split`` under ``dst`` as ``{train,val}/<class>/<image>`` plus ``meta/{train,val}.txt``.

    Raises:
        FileExistsError: ``dst`` already has ``train``/``val`` folders and ``overwrite`` is False.
    """
    for part in ('train', 'val'):
        if osp.exists(osp.join(dst, part)):
            if not overwrite:
                raise FileExistsError(f'{osp.join(dst, part)} exists; pass --overwrite to replace it.')
            shutil.rmtree(osp.join(dst, part))
    os.makedirs(osp.join(dst, 'meta'), exist_ok=True)
    label = {c: i for i, c in enumerate(split['classes'])}
    for part in ('train', 'val'):
        lines = []
        for cls, name in split[part]:
            os.makedirs(osp.join(dst, part, cls), exist_ok=True)
            source, target = osp.abspath(osp.join(src, cls, name)), osp.join(dst, part, cls, name)
            if copy:
                shutil.copy2(source, target)
            else:
                os.symlink(source, target)
            lines.append(f'{cls}/{name} {label[cls]}\n')
        with open(osp.join(dst, 'meta', f'{part}.txt'), 'w') as f:
            f.writelines(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='extracted 101_ObjectCategories folder')
    parser.add_argument('dst', help='output folder (gets train/, val/, meta/)')
    parser.add_argument('--order', choices=['listdir', 'sorted'], default='listdir',
                        help='file order before shuffling: os.listdir (official, file-system dependent) or sorted')
    parser.add_argument('--copy', action='store_true', help='copy images instead of symlinking them')
    parser.add_argument('--keep-background', action='store_true', help=f'also split {BACKGROUND}')
    parser.add_argument('--overwrite', action='store_true', help='replace existing train/ and val/ folders')
    args = parser.parse_args(argv)
    try:
        split = split_caltech101(args.src, args.order, args.keep_background)
        write_split(split, args.src, args.dst, args.copy, args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        raise SystemExit(f'error: {err}')
    print(f'caltech101 ({args.order} order, seed {SEED}): {len(split["classes"])} classes, '
          f'{len(split["train"])} train / {len(split["val"])} val images -> {args.dst}')


if __name__ == '__main__':
    sys.exit(main())
