"""scikit-learn's bundled handwritten digits as an ImageNet-style folder dataset.

The data: 1,797 real 8x8 grey-level scans of the digits 0-9 (UCI "Optical Recognition of Handwritten
Digits", 16 grey levels), shipped inside scikit-learn (``sklearn.datasets.load_digits``), so nothing is
downloaded. The images are upsampled (bicubic) so that a 4-stage backbone of total stride 32 can use them.
"""
import json
import os
import os.path as osp
from typing import Optional, Tuple

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
    from PIL import Image  # demo-only dependency, imported when used
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    info_file = osp.join(root, 'meta', 'info.json')
    wanted, info = _existing_info(info_file, overwrite, size=size, seed=seed, val_ratio=val_ratio)
    if info is not None:
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


def _existing_info(info_file: str, overwrite: bool, **wanted) -> Tuple[dict, Optional[dict]]:
    """(``wanted``, the ``info.json`` of an already written dataset if it was made with the ``wanted`` settings and
    ``overwrite`` is False, else None)."""
    if overwrite or not osp.isfile(info_file):
        return wanted, None
    with open(info_file) as f:
        info = json.load(f)
    return wanted, (info if all(info.get(k) == v for k, v in wanted.items()) else None)


def _digit_split(seed: int, val_ratio: float):
    """The scans (0..255 uint8, 8x8), labels and the stratified train/val index split of the classifier."""
    from sklearn.datasets import load_digits  # demo-only dependency, imported when used
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).round().astype(np.uint8)
    idx_train, idx_val = train_test_split(
        np.arange(len(digits.target)), test_size=val_ratio, random_state=seed, stratify=digits.target)
    return images, digits.target, {'train': np.sort(idx_train), 'val': np.sort(idx_val)}


def _compose_canvas(rng, scans, labels, pool, canvas, digit_size, max_digits, mask_threshold=96):
    """Paste 1..max_digits upsampled scans at random, non-overlapping places on a black canvas.

    Returns the (canvas, canvas) uint8 image and a list of ``(label, mask)``; each mask is the digit's
    strokes (upsampled intensity >= ``mask_threshold``), so boxes and masks come from the real scan.
    """
    from PIL import Image  # demo-only dependency, imported when used
    image = np.zeros((canvas, canvas), np.uint8)
    occupied = np.zeros((canvas, canvas), bool)
    instances = []
    for _ in range(int(rng.integers(1, max_digits + 1))):
        size = int(rng.integers(digit_size[0], digit_size[1] + 1))
        for _attempt in range(20):
            y, x = (int(v) for v in rng.integers(0, canvas - size + 1, size=2))
            if not occupied[y:y + size, x:x + size].any():
                break
        else:
            continue
        i = int(rng.choice(pool))
        patch = np.asarray(Image.fromarray(scans[i]).resize((size, size), Image.BICUBIC))
        mask = np.zeros((canvas, canvas), bool)
        mask[y:y + size, x:x + size] = patch >= mask_threshold
        if mask.sum() < 4:
            continue
        image[y:y + size, x:x + size] = np.maximum(image[y:y + size, x:x + size], patch)
        occupied[max(0, y - 2):y + size + 2, max(0, x - 2):x + size + 2] = True
        instances.append((int(labels[i]), mask))
    return image, instances


def make_digits_coco(root: str, num_train: int = 400, num_val: int = 80, canvas: int = 128,
                     digit_size=(24, 44), max_digits: int = 4, seed: int = 0,
                     overwrite: bool = False) -> dict:
    """A COCO-format instance segmentation set of real digits composited on black canvases.

    Layout as COCO 2017: ``root/{train2017,val2017}/<id>.jpg`` and ``root/annotations/instances_{train,val}2017.json``
    with categories ``'0'..'9'`` (ids 1..10), ``bbox`` [x, y, w, h] (pixels) and ``segmentation`` as compressed
    RLE, all derived from the strokes of the pasted scans (no synthetic shapes). ``root/annotations/classes.txt``
    lists the class names one per line: a file path is how ``--cfg-options`` can set them
    (``train_dataloader.dataset.metainfo.classes=<root>/annotations/classes.txt``; mmengine reads a str metainfo
    value as a file, while a list of names such as ``('0', '1')`` would be parsed into ints). Train canvases use only the
    classifier's train scans and val canvases only its val scans (:func:`make_digits_folder` split, same seed), so
    a classifier backbone transferred to this set has not seen the val digits.

    Args:
        root (str): output directory.
        num_train, num_val (int): number of canvases. Defaults 400 / 80.
        canvas (int): canvas side in pixels. Default 128.
        digit_size (tuple[int, int]): min/max pasted digit side in pixels. Default (24, 44).
        max_digits (int): digits per canvas, 1..max. Default 4.
        seed (int): seed of the split and the layout. Default 0.
        overwrite (bool): rewrite an existing set. Default False.

    Returns:
        dict: ``{'root', 'num_train', 'num_val', 'num_instances', 'classes', ...}``.
    """
    import cv2  # demo-only dependency, imported when used
    from pycocotools import mask as mask_utils
    info_file = osp.join(root, 'annotations', 'info.json')
    wanted, info = _existing_info(info_file, overwrite, num_train=num_train, num_val=num_val, canvas=canvas,
                                  digit_size=list(digit_size), max_digits=max_digits, seed=seed)
    classes_file = osp.join(root, 'annotations', 'classes.txt')
    if info is not None:
        if not osp.isfile(classes_file):  # sets written before the file existed
            with open(classes_file, 'w') as f:
                f.write('\n'.join(CLASSES) + '\n')
        return info
    scans, labels, split = _digit_split(seed, 0.2)
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    with open(classes_file, 'w') as f:
        f.write('\n'.join(CLASSES) + '\n')
    counts = {}
    for name, num in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(root, f'{name}2017'), exist_ok=True)
        images, annotations = [], []
        for image_id in range(1, num + 1):
            image, instances = _compose_canvas(rng, scans, labels, split[name], canvas, digit_size, max_digits)
            file_name = f'{image_id:06d}.jpg'
            cv2.imwrite(osp.join(root, f'{name}2017', file_name), np.repeat(image[..., None], 3, 2),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(dict(id=image_id, file_name=file_name, height=canvas, width=canvas))
            for label, mask in instances:
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
                rle['counts'] = rle['counts'].decode('ascii')
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=label + 1,
                                        bbox=[x, y, w, h], area=float(mask.sum()), iscrowd=0,
                                        segmentation=rle))
        categories = [dict(id=i + 1, name=c, supercategory='digit') for i, c in enumerate(CLASSES)]
        with open(osp.join(root, 'annotations', f'instances_{name}2017.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        counts[name] = len(annotations)
    info = dict(root=osp.abspath(root), classes=list(CLASSES), num_instances=counts, **wanted)
    with open(info_file, 'w') as f:
        json.dump(info, f, indent=1)
    return info


#: ADE20K label written for canvas background in :func:`make_digits_ade20k` (ADE20K class 0, "wall", after
#: ``reduce_zero_label``); digit d is written as label d + 2 (ADE20K classes 1..10 after reduction).
ADE_BACKGROUND_LABEL = 1


def make_digits_ade20k(root: str, num_train: int = 400, num_val: int = 80, canvas: int = 128,
                       digit_size=(24, 44), max_digits: int = 4, seed: int = 0,
                       overwrite: bool = False) -> dict:
    """An ADE20K-format semantic segmentation set of real digits composited on black canvases.

    Layout as ADEChallengeData2016: ``root/images/{training,validation}/<name>.jpg`` and
    ``root/annotations/{training,validation}/<name>.png`` with ADE20K's label convention (0 = unlabelled, ignored
    by ``reduce_zero_label=True``; 1..150 = classes). Every pixel is labelled: background 1 and digit d as d + 2,
    taken from the pasted scans' strokes, so mmseg's unmodified ``ADE20KDataset`` (150 classes) reads it. Same
    scan split and arguments as :func:`make_digits_coco`.

    Returns:
        dict: ``{'root', 'num_train', 'num_val', 'classes', ...}`` where ``classes`` maps ADE class index
        (after ``reduce_zero_label``) 0 -> 'background', 1..10 -> '0'..'9'.
    """
    import cv2  # demo-only dependency, imported when used
    info_file = osp.join(root, 'info.json')
    wanted, info = _existing_info(info_file, overwrite, num_train=num_train, num_val=num_val, canvas=canvas,
                                  digit_size=list(digit_size), max_digits=max_digits, seed=seed)
    if info is not None:
        return info
    scans, labels, split = _digit_split(seed, 0.2)
    rng = np.random.default_rng(seed + 1)
    for name, ade_name, num in (('train', 'training', num_train), ('val', 'validation', num_val)):
        os.makedirs(osp.join(root, 'images', ade_name), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', ade_name), exist_ok=True)
        for k in range(1, num + 1):
            image, instances = _compose_canvas(rng, scans, labels, split[name], canvas, digit_size, max_digits)
            label_map = np.full((canvas, canvas), ADE_BACKGROUND_LABEL, np.uint8)
            for label, mask in instances:
                label_map[mask] = label + 2
            stem = f'ADE_{ade_name[:5]}_{k:08d}'
            cv2.imwrite(osp.join(root, 'images', ade_name, stem + '.jpg'), np.repeat(image[..., None], 3, 2),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(root, 'annotations', ade_name, stem + '.png'), label_map)
    info = dict(root=osp.abspath(root), classes=['background', *CLASSES], **wanted)
    with open(info_file, 'w') as f:
        json.dump(info, f, indent=1)
    return info
