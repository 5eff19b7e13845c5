"""scikit-learn's bundled handwritten digits as an ImageNet-style folder dataset.

The data: 1,797 real 8x8 grey-level scans of the digits 0-9 (UCI "Optical Recognition of Handwritten
Digits", 16 grey levels), shipped inside scikit-learn (``sklearn.datasets.load_digits``), so nothing is
downloaded. The images are upsampled (bicubic) so that a 4-stage backbone of total stride 32 can use them.
"""
import json
import os
import os.path as osp

import numpy as np

__all__ = ['make_digits_folder']

CLASSES = tuple(str(i) for i in range(10))


def make_digits_folder(root: str, size: int = 32, val_ratio: float = 0.2, seed: int = 0,
                       overwrite: bool = False) -> dict:
    """Write the digits as ``root/{train,val}/<digit>/<index>.png`` plus ``root/meta/{train,val}.txt``.

    The layout is the one mmpretrain's ``CustomDataset``/``ImageNet`` read: one folder per class, and an
    annotation file with ``<relative path> <label>`` per line. The split is stratified per class and fixed by
    ``seed``; a second call with the same arguments finds ``root/meta/info.json`` and writes nothing.

    Args:
        root (str): output directory.
        size (int): side of the square output images in pixels (>= 8). Default 32.
        val_ratio (float): fraction of each class put in ``val``, in (0, 1). Default 0.2 (360 images).
        seed (int): random seed of the split. Default 0.
        overwrite (bool): rewrite even if an identical dataset is already there. Default False.

    Returns:
        dict: ``{'root', 'size', 'seed', 'val_ratio', 'num_train', 'num_val', 'classes'}``.

    Raises:
        ValueError: ``size < 8`` or ``val_ratio`` outside (0, 1).
    """
    if size < 8:
        raise ValueError(f'size must be >= 8 (the scans are 8x8), got {size}.')
    if not 0 < val_ratio < 1:
        raise ValueError(f'val_ratio must be in (0, 1), got {val_ratio}.')
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    info_file = osp.join(root, 'meta', 'info.json')
    wanted = dict(size=size, seed=seed, val_ratio=val_ratio)
    if not overwrite and osp.isfile(info_file):
        with open(info_file) as f:
            info = json.load(f)
        if all(info.get(k) == v for k, v in wanted.items()):
            return info

    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).round().astype(np.uint8)  # (1797, 8, 8), 0..255
    labels = digits.target
    idx_train, idx_val = train_test_split(
        np.arange(len(labels)), test_size=val_ratio, random_state=seed, stratify=labels)
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    counts = {}
    for split, indices in (('train', idx_train), ('val', idx_val)):
        lines = []
        for i in sorted(indices):
            label = int(labels[i])
            rel = f'{split}/{label}/{i:04d}.png'
            os.makedirs(osp.dirname(osp.join(root, rel)), exist_ok=True)
            Image.fromarray(images[i]).resize((size, size), Image.BICUBIC).save(osp.join(root, rel))
            lines.append(f'{rel} {label}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        counts[split] = len(lines)
    info = dict(root=osp.abspath(root), num_train=counts['train'], num_val=counts['val'],
                classes=list(CLASSES), **wanted)
    with open(info_file, 'w') as f:
        json.dump(info, f, indent=1)
    return info
