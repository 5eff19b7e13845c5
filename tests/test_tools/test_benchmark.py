"""tools/analysis_tools/benchmark.py: models from configs with overrides, the report table and JSON, sections, clear
errors (smoke tests on tiny archs with one call each; real measurements are taken by running the tool)."""
import json
import os.path as osp

import pytest
import torch

from helpers_mmmixer import REPO, load_tool

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
STRIP = osp.join(REPO, 'configs', 'stripmlp', 'stripmlp-tiny_8xb128_in1k.py')
MSMLP = osp.join(REPO, 'configs', 'msmlp', 'msmlp-tiny_8xb128_in1k.py')
POSMLP = osp.join(REPO, 'configs', 'posmlp', 'posmlp-tiny_8xb128_in1k.py')
TINY_STRIP = STRIP + '::model.backbone.arch={"embed_dims":40,"depths":[1,1,1,1]}::model.head.in_channels=320' \
    '::model.backbone.img_size=32::model.head.num_classes=10'
TINY_MSMLP = MSMLP + '::model.backbone.arch={"embed_dims":20,"depths":[1,1,1,1]}::model.head.in_channels=160' \
    '::model.head.num_classes=10'
FAST = ['--size', '32', '--batch', '1', '--train-batch', '2', '--repeats', '1', '--train-repeats', '1', '--warmup',
        '0', '--threads', '1']


@pytest.fixture(scope='module')
def bench():
    return load_tool(TOOL, 'mmmixer_benchmark_tool')


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_spec_overrides(bench):
    path, overrides = bench.split_spec('mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py::model.backbone.arch=small'
                                       '::model.backbone.out_indices=(0,1,2,3)')
    assert path == 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'
    assert overrides == [('model.backbone.arch', 'small'), ('model.backbone.out_indices', (0, 1, 2, 3))]
    assert bench.split_spec(STRIP) == (STRIP, [])
    cfg = bench.load_config(STRIP + '::model.backbone.arch=small')
    assert cfg.model.backbone.arch == 'small' and cfg.model.backbone.type == 'mmmixer.StripMLP'
    assert bench.label_of(STRIP + '::model.backbone.arch=small') == 'stripmlp-tiny_8xb128_in1k arch=small'
    assert bench.parse_size('800x1333') == (800, 1333) and bench.parse_size(224) == (224, 224)
    # ratios: median over rounds of the per-round time ratio (a slow round hits both models of that round)
    assert bench.paired_ratio([1., 4., 2.], [2., 8., 2.]) == 2. and bench.paired_ratio([], [1.]) is None
    for bad in ('224x', 'abc', 0, '0x5'):
        with pytest.raises(ValueError, match='size'):
            bench.parse_size(bad)


def test_bad_config_name_is_a_clear_error(bench, capsys):
    with pytest.raises(SystemExit, match="config 'configs/nope.py' not found"):
        bench.main(['configs/nope.py', *FAST])
    with pytest.raises(SystemExit, match='not found'):
        bench.main(['mmpretrain::nope/nope.py', *FAST])
    with pytest.raises(SystemExit, match='known families are'):
        bench.main([TINY_MSMLP, '--official', 'resnet=/tmp', *FAST])


def test_table_and_json(bench, tmp_path, capsys):
    out, raw = tmp_path / 'doc.md', tmp_path / 'raw.json'
    out.write_text('intro\n<!-- benchmark:t:begin -->\nold\n<!-- benchmark:t:end -->\noutro\n')
    bench.main([TINY_STRIP, TINY_MSMLP, '--reference', TINY_MSMLP, *FAST, '--profile', '3', '--out', str(out),
                '--section', 't', '--json', str(raw)])
    text = out.read_text()
    assert text.startswith('intro\n<!-- benchmark:t:begin -->\nCommand: `python tools/analysis_tools/benchmark.py ')
    assert 'old' not in text and text.endswith('<!-- benchmark:t:end -->\noutro\n')
    table = [line for line in text.splitlines() if line.startswith('| ')]
    assert table[0] == ('| model | size | params (M) | FLOPs (G) | inference (img/s) | inference (ms/Mpx) | '
                        'inference GFLOP/s | training step (img/s) | training GFLOP/s | inference ÷ ref | '
                        'training ÷ ref |')
    rows = [[c.strip() for c in line.strip('|').split('|')] for line in table[1:3]]
    assert [r[0] for r in rows] == ['stripmlp-tiny_8xb128_in1k arch={\'embed_dims\': 40, \'depths\': [1, 1, 1, 1]} '
                                    'in_channels=320 img_size=32 num_classes=10',
                                    'msmlp-tiny_8xb128_in1k arch={\'embed_dims\': 20, \'depths\': [1, 1, 1, 1]} '
                                    'in_channels=160 num_classes=10']
    assert rows[1][-2:] == ['1.00', '1.00'] and rows[0][1] == '32×32'
    assert 'load average (1/5/15 min) before' in text and '1 threads' in text
    assert text.count('top operators:') == 4  # inference and training step per model
    result = json.loads(raw.read_text())
    r = result['rows'][0]
    assert len(r['infer_times']) == 1 and len(r['train_times']) == 1
    assert r['infer_ips'] == pytest.approx(1 / r['infer_times'][0])
    assert r['train_ips'] == pytest.approx(2 / r['train_times'][0])
    assert r['infer_ratio'] == pytest.approx(r['infer_ips'] / result['rows'][1]['infer_ips'])
    model, backbone_type = bench.build_model(TINY_STRIP)
    assert backbone_type == 'StripMLP' and r['params'] == sum(p.numel() for p in model.parameters())
    assert r['flops'] > 0 and 0 < r['profile']['shared_percent'] <= 100
    assert r['infer_gflops'] == pytest.approx(r['flops'] * r['infer_ips'] / 1e9)
    assert r['train_gflops'] == pytest.approx(r['flops'] * r['train_ips'] / 1e9)
    assert r['mode'] == 'eager fp32' and r['compiled'] is False and r['amp'] is None


def test_variants_and_per_flop_reference(bench, tmp_path, capsys):
    """--compile / --amp add rows of the same model (same weights and inputs) with their speed-up over eager fp32
    and output difference; --per-flop-reference divides achieved FLOP/s within a variant."""
    raw, out = tmp_path / 'raw.json', tmp_path / 'v.md'
    bench.main([TINY_MSMLP, '--per-flop-reference', TINY_STRIP, '--compile', '--compile-backend', 'eager',
                '--amp', 'bf16', '--clock', 'cpu', *FAST, '--json', str(raw), '--out', str(out)])
    result = json.loads(raw.read_text())
    rows = result['rows']
    assert [(r['label'][:6], r['mode']) for r in rows] == [
        (m, v) for m in ('msmlp-', 'stripm') for v in ('eager fp32', 'eager bf16', 'compiled fp32', 'compiled bf16')]
    assert result['machine']['cpu'] and isinstance(result['machine']['cpu_flags'], list)
    for r in rows:
        base = next(x for x in rows if x['spec'] == r['spec'] and x['mode'] == 'eager fp32')
        ref = next(x for x in rows if x['spec'] == TINY_STRIP and x['mode'] == r['mode'])
        assert r['infer_per_flop'] == pytest.approx(
            ref['infer_times'][0] / r['infer_times'][0] * r['flops'] / ref['flops'])
        if r is base:
            assert r['infer_vs_base'] is None and 'max_abs_diff' not in r
        else:
            assert r['infer_vs_base'] == pytest.approx(base['infer_times'][0] / r['infer_times'][0])
            # the eager backend runs the same graph: identical in fp32; bf16 rounds, within a few percent
            assert r['max_abs_diff'] == 0. if r['amp'] is None else 0 < r['max_abs_diff'] < 0.5
        assert ('compile_s' in r) == r['compiled']
    assert result['settings']['clock'] == 'cpu' and 'timed by the CPU time of the process' in out.read_text()
    header = next(line for line in out.read_text().splitlines() if line.startswith('| model'))
    for col in ('mode', 'inference ÷ ref per FLOP', 'training ÷ ref per FLOP', 'inference ÷ eager fp32',
                'compile (s)', 'max |Δ output|'):
        assert f'| {col} |' in header
    with pytest.raises(ValueError, match="--amp 'fp8': accepted values are bf16, fp16"):
        bench.run_benchmark([TINY_MSMLP], amp='fp8')
    with pytest.raises(ValueError, match='--clock cpu measures CPU time'):
        bench.run_benchmark([TINY_MSMLP], clock='cpu', device='cuda')
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='torch.cuda.is_available'):
            bench.main([TINY_MSMLP, '--device', 'cuda', *FAST])


def test_complexity_only_and_backbone_only(bench, tmp_path, capsys):
    out = tmp_path / 'c.md'
    bench.main([TINY_MSMLP + '::model.backbone.out_indices=(0,1,2,3)::model.backbone.gap_before_final_norm=False',
                '--backbone-only', '--complexity-only',
                *FAST, '--size', '32', '40x48', '--out', str(out)])
    table = [line for line in out.read_text().splitlines() if line.startswith('| ')]
    assert table[0] == '| model | size | params (M) | FLOPs (G) |' and len(table) == 3  # no timing columns
    assert table[2].split('|')[2].strip() == '40×48'


def test_official_needs_the_checkout(bench, tmp_path):
    with pytest.raises(SystemExit, match='official model file .* not found'):
        bench.main([TINY_STRIP, '--official', f'stripmlp={tmp_path}', *FAST])
    with pytest.raises(SystemExit, match='official model file .*posmlp.py not found'):
        bench.main([POSMLP, '--official', f'posmlp={tmp_path}', *FAST])
