"""From official weights to a model by name: the model index (mim search / download, mmpretrain ModelHub), the
official-URL checkpoint loader, ``Pretrained`` with official-layout files, and the missing-checkpoint stop."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from helpers_mmmixer import REPO, build_from_config, subprocess_env

FAMILIES = {'msmlp': 'msmlp', 'posmlp': 'posmlp', 'stripmlp': 'stripmlp', 'swin_msmlp': 'swin-msmlp'}
MSMLP_URL = ('https://tsciencescu.blob.core.windows.net/projectshzheng/MSMLP/released_model/msmlp_tiny_patch4/'
             'msmlp_tiny_patch4_ckpt_epoch299.pth')


def metafile_models():
    models = []
    for family in FAMILIES:
        with open(osp.join(REPO, 'configs', family, 'metafile.yml')) as f:
            data = yaml.safe_load(f)
        models += [(family, m) for m in data['Models']]
    return models


def mim_index():
    """mim's data frame of this checkout's model index (what `mim search mmmixer` reads from the installed copy)."""
    from mim.commands.search import convert2df
    from modelindex.load_model_index import load
    return convert2df(load(osp.join(REPO, 'model-index.yml')))


@pytest.mark.parametrize('family,model', list(FAMILIES.items()))
def test_mim_search_by_model_name(family, model):
    """`mim search mmmixer --model <family>` finds every config of the family (classification, det, seg)."""
    from mim.commands.search import filter_by_models
    found = set(filter_by_models(mim_index(), [model]).index)
    configs = {osp.splitext(osp.basename(p))[0] for p in glob.glob(osp.join(REPO, 'configs', family, '*.py'))}
    assert configs and configs <= found, sorted(configs - found)


def test_mim_search_by_config_and_every_config_indexed():
    from mim.commands.search import filter_by_configs
    df = filter_by_configs(mim_index(), ['mask-rcnn_msmlp-t_fpn_1x_coco', 'msmlp-t_upernet_8xb2-160k_ade20k-512x512'])
    assert len(df) == 2
    assert df.loc['mask-rcnn_msmlp-t_fpn_1x_coco', 'config'] == 'configs/msmlp/mask-rcnn_msmlp-t_fpn_1x_coco.py'
    for _, m in metafile_models():
        assert osp.isfile(osp.join(REPO, m['Config'])), m['Config']
        assert osp.splitext(osp.basename(m['Config']))[0] == m['Name'], 'mim finds configs by their file name'


def test_metafile_parameters_match_the_configs():
    """Every classification entry's parameter count is the one of the model its config builds."""
    for family, m in metafile_models():
        tasks = {r['Task'] for r in m.get('Results', [])}
        if 'Image Classification' not in tasks and 'in1k' not in m['Name']:
            continue
        with torch.device('meta'):
            model, _ = build_from_config(osp.basename(m['Config']))
        assert m['Metadata']['Parameters'] == sum(p.numel() for p in model.parameters()), m['Name']


@pytest.mark.slow
def test_metafile_flops_measured_and_labelled():
    """Classification entries carry the measured FLOPs; the paper's figure, where there is one, is labelled."""
    from mmengine.analysis import get_model_complexity_info
    entries = {m['Name']: m for _, m in metafile_models()}
    for name in ['msmlp-tiny_8xb128_in1k', 'posmlp-tiny_8xb128_in1k', 'stripmlp-tiny_8xb128_in1k',
                 'swin-msmlp-tiny_16xb64_in1k']:
        model, _ = build_from_config(f'{name}.py')
        model.eval()
        info = get_model_complexity_info(model, input_shape=(3, 224, 224), show_table=False, show_arch=False)
        meta = entries[name]['Metadata']
        assert meta['Parameters'] == info['params'], name
        assert abs(meta['FLOPs'] - info['flops']) / info['flops'] < 0.002, (name, meta['FLOPs'], info['flops'])
    assert entries['msmlp-tiny_8xb128_in1k']['Metadata']['FLOPs (paper)'] == 4_900_000_000


def test_msmlp_entries_point_at_the_official_release():
    for family, m in metafile_models():
        if m.get('Weights'):
            assert family == 'msmlp' and m['Weights'].startswith('https://'), m['Name']
            assert m['Converted From']['Weights'] == m['Weights']
            assert m['Converted From']['Code'].startswith('https://github.com/JegZheng/MS-MLP')
    weighted = [m['Name'] for f, m in metafile_models() if m.get('Weights')]
    assert weighted == ['msmlp-tiny_8xb128_in1k', 'msmlp-small_8xb128_in1k', 'msmlp-base_8xb128_in1k']


def test_mim_download(tmp_path, monkeypatch):
    """`mim download mmmixer --config msmlp-tiny_8xb128_in1k --dest D` (file already there: nothing is fetched)
    keeps the checkpoint and dumps the config."""
    import mim.commands.download  # noqa: F401  (the package re-exports functions under the module names)
    import mim.commands.search  # noqa: F401
    download, search = sys.modules['mim.commands.download'], sys.modules['mim.commands.search']
    from modelindex.load_model_index import load
    monkeypatch.setattr(search, 'load_metadata_from_local', lambda package: load(osp.join(REPO, 'model-index.yml')))
    monkeypatch.setattr(download, 'get_installed_path', lambda package: REPO)
    monkeypatch.setattr(download, 'is_installed', lambda package: True)
    (tmp_path / osp.basename(MSMLP_URL)).write_bytes(b'placeholder')
    result = download.download('mmmixer', ['msmlp-tiny_8xb128_in1k'], dest_root=str(tmp_path))
    assert result == [osp.basename(MSMLP_URL)]
    from mmengine.config import Config
    cfg = Config.fromfile(str(tmp_path / 'msmlp-tiny_8xb128_in1k.py'))
    assert cfg.model.backbone.type == 'mmmixer.MSMLP'


MODEL_HUB_SCRIPT = """
import sys
if sys.argv[1] == 'mmmixer-first':
    import mmmixer
    import mmpretrain
else:
    from mmpretrain.apis import ModelHub, list_models
    import mmmixer
import mmpretrain
from mmpretrain.apis import ImageClassificationInferencer, list_models
model = mmpretrain.get_model('msmlp-tiny_8xb128_in1k')
print('backbone', type(model.backbone).__name__)
names = list_models('*msmlp*')
print('listed', 'swin-msmlp-tiny_16xb64_in1k' in names, 'mask-rcnn_msmlp-t_fpn_1x_coco' in names)
import numpy as np
inferencer = ImageClassificationInferencer('stripmlp-light-tiny_8xb128_in1k')
out = inferencer(np.zeros((64, 64, 3), dtype=np.uint8))[0]
print('inferred', type(inferencer.model.backbone).__name__, len(out['pred_scores']))
"""


@pytest.mark.parametrize('order', ['mmmixer-first', 'mmpretrain-first'])
def test_mmpretrain_model_hub_finds_our_models(tmp_path, order):
    script = tmp_path / 'hub.py'
    script.write_text(MODEL_HUB_SCRIPT)
    out = subprocess.run([sys.executable, str(script), order], capture_output=True, text=True, cwd=str(tmp_path),
                         env=subprocess_env(), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'backbone MSMLP' in out.stdout
    assert 'listed True False' in out.stdout  # classifiers only: det/seg entries are for mim search
    assert 'inferred StripMLP 1000' in out.stdout


def golden_msmlp_classifier(golden):
    with open(osp.join(golden, 'msmlp_small-random.json')) as f:
        kwargs = json.load(f)['official_constructor_kwargs']

    def golden_arch(cfg):
        cfg.model.backbone.arch = dict(embed_dims=kwargs['embed_dim'], depths=kwargs['depths'])
        cfg.model.head.num_classes = kwargs['num_classes']
        cfg.model.head.in_channels = kwargs['embed_dim'] * 8

    model, _ = build_from_config('msmlp-tiny_8xb128_in1k.py', golden_arch)
    return model


def test_official_url_loads_converted(golden, tmp_path, monkeypatch, capsys):
    """``load_from`` / ``load_checkpoint`` / ``get_model(pretrained=URL)`` with an official MS-MLP release URL: the file
    (here placed in torch's hub cache, so nothing is downloaded) is converted while loading -> official logits."""
    from mmengine.runner import load_checkpoint
    hub = tmp_path / 'hub'
    (hub / 'checkpoints').mkdir(parents=True)
    shutil.copy(osp.join(golden, 'msmlp_small-random.official.pth'), hub / 'checkpoints' / 'msmlp_small-random.pth')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))
    url = 'https://tsciencescu.blob.core.windows.net/projectshzheng/MSMLP/released_model/x/msmlp_small-random.pth'
    model = golden_msmlp_classifier(golden)
    capsys.readouterr()
    load_checkpoint(model, url, map_location='cpu', strict=True)
    assert 'Loads checkpoint by official_url backend' in capsys.readouterr().out  # mmengine's log of the scheme
    io = torch.load(osp.join(golden, 'msmlp_small-random.io.pth'), weights_only=True)
    model.eval()
    with torch.no_grad():
        logits = model(io['input'], mode='tensor')
    assert (logits - io['logits']).abs().max().item() <= 1e-4


@pytest.mark.parametrize('name,family', [('msmlp_small-random', 'msmlp'), ('posmlp_small-gqpe-random', 'posmlp'),
                                         ('posmlp_small-lrpe-random', 'posmlp'),
                                         ('stripmlp_small-c40-random', 'stripmlp')])
def test_pretrained_official_file_converts_in_memory(golden, name, family):
    """``init_cfg=dict(type='Pretrained', checkpoint=<official .pth>)`` on a dense backbone gives exactly the tensors
    the command-line converter writes (no conversion step, no prefix)."""
    from mmmixer.models.backbones import MSMLP, PosMLP, StripMLP
    from mmmixer.checkpoint import load_foreign_checkpoint
    cls = {'msmlp': MSMLP, 'posmlp': PosMLP, 'stripmlp': StripMLP}[family]
    path = osp.join(golden, f'{name}.official.pth')
    with open(osp.join(golden, f'{name}.json')) as f:
        key = json.load(f)['checkpoint_key']
    result = cls.convert_official(load_foreign_checkpoint(path)[key])
    kwargs = {k: v for k, v in result.items() if k not in ('state_dict', 'arch')}  # what the converter inferred
    model = cls(arch=result['arch'], out_indices=(0, 1, 2, 3), init_cfg=dict(type='Pretrained', checkpoint=path),
                **kwargs)
    model.init_weights()
    ours = model.state_dict()
    expected = {k[len('backbone.'):]: v for k, v in result['state_dict'].items() if k.startswith('backbone.')}
    assert expected and set(expected) <= set(ours)
    for k, v in expected.items():
        assert torch.equal(ours[k], v), k
    report = model.pretrained_report
    assert not report.unused or all(k.startswith('head') for k in report.unused), report.summary()


def test_train_stops_on_missing_checkpoint(tmp_path):
    """A missing local Pretrained file stops tools/train.py before the Runner: one short message that names the
    file, the converter and ``init_cfg=None``."""
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'),
         osp.join(REPO, 'configs', 'posmlp', 'mask-rcnn_posmlp-t_fpn_1x_coco.py'), '--work-dir', str(tmp_path)],
        capture_output=True, text=True, env=subprocess_env(), cwd=str(tmp_path), timeout=600)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert 'checkpoints/posmlp-tiny_in1k.pth' in text
    assert 'posmlp_to_mmmixer.py' in text and 'init_cfg=None' in text
    assert 'Traceback' not in text
    assert len(text.strip().splitlines()) < 15, text
