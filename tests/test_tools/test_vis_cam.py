"""Class activation maps of our classifiers through mmpretrain's own ``tools/visualization/vis_cam.py`` (shipped in
the mmpretrain wheel under ``.mim``; needs the optional ``grad-cam`` package, requirements/analysis.txt): one image,
a nano MS-MLP with random weights and the target layer docs/analysis.md gives for the family."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers_mmmixer import REPO, subprocess_env

NANO = osp.join(REPO, 'configs', 'demo', 'msmlp-nano_1xb64-40e_digits.py')


def _vis_cam_script():
    import mmpretrain
    return osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'visualization', 'vis_cam.py')


def test_vis_cam_on_a_nano_msmlp(tmp_path):
    pytest.importorskip('pytorch_grad_cam', reason='the optional grad-cam package (requirements/analysis.txt) is '
                        'not installed; tools/setup_env.sh installs it')
    import mmcv
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from sklearn.datasets import load_sample_images
    import mmmixer.models  # noqa: F401
    script = _vis_cam_script()
    assert osp.isfile(script), f'mmpretrain ships no {script}'
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(NANO).model)
    ckpt = str(tmp_path / 'nano.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    img = str(tmp_path / 'photo.png')
    mmcv.imwrite(np.ascontiguousarray(load_sample_images().images[1][100:164, 200:264, ::-1]), img)  # 64x64 BGR
    out = str(tmp_path / 'cam.png')
    proc = subprocess.run([sys.executable, script, img, NANO, ckpt, '--target-layers', 'backbone.stages.3',
                           '--save-path', out], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env=subprocess_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cam = mmcv.imread(out)
    assert cam.shape == (64, 64, 3)
    # the heatmap is blended over the picture: the result differs from it
    assert np.abs(cam.astype(int) - mmcv.imread(img).astype(int)).mean() > 1


#: the target layer docs/analysis.md gives per family (tiny ImageNet classifiers, 224x224 test pipeline) and the
#: extra vis_cam arguments it needs
FAMILY_TARGETS = [
    ('msmlp-tiny_8xb128_in1k.py', ['--target-layers', 'backbone.stages.3']),
    ('posmlp-tiny_8xb128_in1k.py', ['--target-layers', 'backbone.stages.3']),
    ('stripmlp-tiny_8xb128_in1k.py', ['--target-layers', 'backbone.stages.3.blocks.1']),
    ('swin-msmlp-tiny_16xb64_in1k.py', ['--target-layers', 'backbone.norm3', '--vit-like', '--num-extra-tokens',
                                        '-49']),
]


@pytest.mark.slow
@pytest.mark.parametrize('name,extra', FAMILY_TARGETS, ids=[n.split('_')[0] for n, _ in FAMILY_TARGETS])
def test_vis_cam_target_layers_of_each_family(tmp_path, name, extra):
    pytest.importorskip('pytorch_grad_cam', reason='the optional grad-cam package (requirements/analysis.txt) is '
                        'not installed; tools/setup_env.sh installs it')
    import mmcv
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from sklearn.datasets import load_sample_images
    import mmmixer.models  # noqa: F401
    from helpers_mmmixer import config_path
    config = config_path(name)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'random.pth')
    torch.save({'state_dict': MODELS.build(Config.fromfile(config).model).state_dict()}, ckpt)
    img = str(tmp_path / 'photo.png')
    mmcv.imwrite(np.ascontiguousarray(load_sample_images().images[0][:, :, ::-1]), img)
    out = str(tmp_path / 'cam.png')
    proc = subprocess.run([sys.executable, _vis_cam_script(), img, config, ckpt, *extra, '--save-path', out],
                          capture_output=True, text=True, timeout=600, cwd=REPO, env=subprocess_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert mmcv.imread(out).shape == (224, 224, 3)
