"""tools/analysis_tools/gpu_check.py: its CPU run (``--device cpu --quick``, every code path of the GPU run on tiny
archs and inputs), its report, its errors, and the OpenCV placeholder."""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch

from helpers_mmmixer import REPO, subprocess_env, load_tool

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'gpu_check.py')


def _tool():
    return load_tool(TOOL, 'mmmixer_gpu_check')


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('gpu_check')
    docs = out / 'benchmarks.md'
    docs.write_text('# B\n\n## GPU\n\n<!-- benchmark:gpu:begin -->\nold\n<!-- benchmark:gpu:end -->\ntail\n')
    result = subprocess.run([sys.executable, TOOL, '--device', 'cpu', '--quick', '--out-dir', str(out),
                             '--update-docs', str(docs)],
                            capture_output=True, text=True, env=subprocess_env(), timeout=600)
    return result, out, docs


def test_quick_cpu_run_passes_every_check(quick_run):
    result, out, docs = quick_run
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads((out / 'gpu_check.json').read_text())
    tool = _tool()
    names = list(tool.FAMILIES) + list(tool.REFERENCES)
    assert report['failures'] == []
    assert report['environment']['device'] == 'cpu' and report['quick'] and report['compile_backend'] == 'eager'

    precision = {r['model']: r for r in report['precision']}
    assert list(precision) == names
    for row in precision.values():
        assert 'error' not in row, row
        assert row['fp32_finite'] and row['fp16_finite'] and row['bf16_finite']
        assert (row['fp16_logits_dtype'], row['bf16_logits_dtype']) == ('float16', 'bfloat16')
        # autocast changed the numbers, within the bounds; fp16 keeps 3 more bits than bf16
        assert 0 < row['fp16_rel_logits'] < tool.REL_BOUND['fp16']
        assert 0 < row['bf16_rel_logits'] < tool.REL_BOUND['bf16']
        assert 0 < row['fp16_rel_grads'] < 0.1 and 0 < row['bf16_rel_grads'] < 0.5
        assert row['fp16_scale'] > 0 and 0 <= row['fp16_skipped_steps'] <= tool.MAX_SKIPPED_STEPS

    rows = report['throughput']  # benchmark.py's rows: eager and compiled, fp32 and bf16 autocast
    modes = ('eager fp32', 'eager bf16', 'compiled fp32', 'compiled bf16')
    assert [(r['model'], r['mode']) for r in rows] == [(n, m) for n in names for m in modes]
    for row in rows:
        assert 'error' not in row, row
        assert row['infer_ips'] > 0 and row['train_ips'] > 0 and row['params'] > 0 and row['flops'] > 0
        assert len(row['infer_times']) == len(row['train_times']) == report['settings']['repeats']
        assert (row.get('compile_s') is not None) == row['compiled']
        if row['mode'] != 'eager fp32':  # the same weights and inputs: fp32 compiled equal, autocast close
            assert row['max_abs_diff'] < (1e-4 if row['amp'] is None else 0.1)

    memory = {r['model']: r for r in report['memory']}
    assert list(memory) == list(tool.FAMILIES)
    for row in memory.values():
        assert 'error' not in row, row
        assert 0 < row['cp_saved_mb'] < row['plain_saved_mb']  # checkpointing keeps fewer activations
        assert row['grad_norm_rel_diff'] < 1e-5  # and computes the same gradients

    dense = {r['model']: r for r in report['dense']}
    assert list(dense) == list(tool.FAMILIES)
    for row in dense.values():
        assert 'error' not in row, row
        assert row['finite'] and row['size'] == '100x133'
        # four stage maps at strides 4, 8, 16, 32 (ceil: every family pads bottom/right)
        assert [s[1:] for s in row['shapes']] == [[math.ceil(100 / s), math.ceil(133 / s)] for s in (4, 8, 16, 32)]

    text = (out / 'gpu_check.md').read_text()
    assert 'All checks passed' in text
    for name in names:
        # precision, four throughput rows (+ memory and dense for ours)
        assert text.count(f'| {name} |') == (7 if name in tool.FAMILIES else 5), name
    docs_text = docs.read_text()
    assert 'old' not in docs_text and text.strip() in docs_text and docs_text.endswith('gpu:end -->\ntail\n')


def test_bad_arguments_are_named():
    tool = _tool()
    with pytest.raises(SystemExit, match=r"--models \['ResNet-50'\] unknown; accepted: \['MS-MLP-T'"):
        tool.main(['--device', 'cpu', '--models', 'ResNet-50'])
    with pytest.raises(SystemExit, match="--device must be 'cuda', 'cuda:N' or 'cpu', got 'tpu'"):
        tool.main(['--device', 'tpu'])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='torch.cuda.is_available\\(\\) is False'):
            tool.main(['--device', 'cuda'])


def test_install_from_needs_wheels(tmp_path):
    with pytest.raises(SystemExit, match='holds no \\*.whl; build it with tools/analysis_tools/build_gpu_wheelhouse'):
        _tool().main(['--install-from', str(tmp_path), '--venv', str(tmp_path / 'venv'), '--quick'])
    assert not (tmp_path / 'venv').exists()


def test_cv2_placeholder_when_opencv_is_missing():
    """Without OpenCV, mmcv and our backbones import and run; an image function names what is missing."""
    code = (
        'import sys\n'
        'sys.modules["cv2"] = None\n'  # makes `import cv2` raise ImportError
        f'sys.path.insert(0, {osp.dirname(TOOL)!r})\n'
        'import gpu_check\n'
        'del sys.modules["cv2"]\n'
        'import builtins\n'
        'real_import = builtins.__import__\n'
        'def no_cv2(name, *a, **k):\n'
        '    if name == "cv2" and "cv2" not in sys.modules:\n'
        '        raise ImportError("no OpenCV here")\n'
        '    return real_import(name, *a, **k)\n'
        'builtins.__import__ = no_cv2\n'
        'assert gpu_check.ensure_cv2() is True\n'
        'import cv2, torch\n'
        'assert isinstance(cv2.INTER_LINEAR, int) and cv2.INTER_LINEAR != cv2.INTER_NEAREST\n'
        'import mmcv, mmcv.cnn\n'
        'from mmmixer.models import MSMLP\n'
        'print(tuple(MSMLP(arch=dict(embed_dims=32, depths=[1, 1, 1, 1]))(torch.randn(1, 3, 32, 32))[0].shape))\n'
        'try:\n'
        '    mmcv.imresize(torch.zeros(4, 4, 3).numpy(), (2, 2))\n'
        'except ImportError as err:\n'
        '    print("ImportError:", err)\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert '(1, 256, 1, 1)' in result.stdout
    assert 'ImportError: cv2.resize: OpenCV is not installed (pip install opencv-python-headless)' in result.stdout
