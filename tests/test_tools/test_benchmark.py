"""tools/analysis_tools/benchmark.py: structure of the tables, ratios from the same run, helpers (smoke test, tiny
models; the real measurements are taken by running the tool, never in tests)."""
import importlib.util
import json
import math
import os.path as osp

import pytest
import torch

from helpers_mmmixer import REPO

from mmmixer.models import MSMLP

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('mmmixer_benchmark_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny_specs(bench):
    """A pooled tiny MS-MLP (classification output (B, C)) and, as reference, one returning maps (pooled by the
    benchmark's classifier)."""

    def subject(dense, size):
        kwargs = dict(out_indices=(0, 1, 2, 3), gap_before_final_norm=False) if dense else {}
        return MSMLP(arch=dict(embed_dims=20, depths=[1, 1, 1, 1]), **kwargs)

    def reference(dense, size):
        return MSMLP(arch=dict(embed_dims=20, depths=[1, 1, 2, 1]), gap_before_final_norm=False,
                     out_indices=(0, 1, 2, 3) if dense else -1)

    return bench.ModelSpec('tiny', 'Tiny', subject), bench.ModelSpec('tiny-ref', 'Tiny-Ref (test)', reference)


def test_table_from_one_run(bench):
    subject, reference = tiny_specs(bench)
    result = bench.run_benchmark([subject], reference=reference, size=32, batch=2, train_batch=2, repeats=1,
                                 train_repeats=1, warmup=0, threads=1, num_classes=10, log=lambda msg: None)
    rows = result['rows']
    assert [r['spec'] for r in rows] == ['tiny', 'tiny-ref']  # the reference is appended and measured too
    assert result['reference'] == 'Tiny-Ref (test)'
    assert result['settings']['threads'] == 1 and result['machine']['torch_threads'] == 1
    ref = rows[1]
    for row, spec in zip(rows, (subject, reference)):
        backbone = spec.build(False, (32, 32))
        width = backbone.embed_dims[-1]
        assert row['params'] == sum(p.numel() for p in backbone.parameters()) + width * 10 + 10
        assert isinstance(row['flops'], int) and row['flops'] > 0
        assert len(row['infer_times']) == 1 and len(row['train_times']) == 1
        assert row['infer_ips'] == pytest.approx(2 / row['infer_times'][0])
        assert row['train_ips'] == pytest.approx(2 / row['train_times'][0])
        # ratios are taken against the reference row of this very run
        assert row['infer_ratio'] == pytest.approx(row['infer_ips'] / ref['infer_ips'])
        assert row['train_ratio'] == pytest.approx(row['train_ips'] / ref['train_ips'])
        assert 0 < row['infer_peak_bytes']
        # a training step ends holding every gradient (4 bytes per float32 parameter)
        assert row['train_peak_bytes'] >= 4 * row['params']
    assert ref['infer_ratio'] == 1.0 and ref['train_ratio'] == 1.0
    assert rows[1]['flops'] > rows[0]['flops']  # the reference has one more block

    table = bench.format_table(result).splitlines()
    header = [c.strip() for c in table[0].strip('|').split('|')]
    assert header == [c.format(ref='Tiny-Ref') for c in bench.TABLE_COLUMNS]
    assert 'inference ÷ Tiny-Ref' in header and 'training ÷ Tiny-Ref' in header
    assert table[1] == '|' + '---|' * len(header)
    for line, row in zip(table[2:], rows):
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert len(cells) == len(header)
        assert cells[0] == row['label'] and cells[1] == f'`{row["spec"]}`'
        assert cells[header.index('inference ÷ Tiny-Ref')] == f'{row["infer_ratio"]:.2f}'
        assert cells[header.index('training ÷ Tiny-Ref')] == f'{row["train_ratio"]:.2f}'
    assert len(table) == 2 + len(rows)
    report = bench.format_report(result, 'cmd --x')
    assert 'Command: `cmd --x`' in report and '- CPU: ' in report and 'torch threads: 1' in report
    assert bench.format_table(result) in report


def test_scaling(bench):
    subject, _ = tiny_specs(bench)
    result = bench.run_scaling([subject], sizes=[32, 64, '32x64'], repeats=1, warmup=0, threads=1,
                               log=lambda msg: None)
    row, = result['rows']
    assert row['sizes'] == [[32, 32], [64, 64], [32, 64]]
    assert len(row['times']) == 3 and all(t > 0 for t in row['times'])
    assert len(row['peak_bytes']) == 3 and all(p > 0 for p in row['peak_bytes'])
    assert row['peak_bytes'][1] > row['peak_bytes'][0]  # 4x the pixels, more activation memory
    assert math.isfinite(row['time_exponent']) and math.isfinite(row['memory_exponent'])
    table = bench.format_scaling_table(result).splitlines()
    assert table[0] == ('| model | spec | 32×32 (ms / MiB) | 64×64 (ms / MiB) | 32×64 (ms / MiB) | time exponent '
                        '| memory exponent |')
    assert len(table) == 3


def test_fit_exponent_and_sizes(bench):
    pixels = [224**2, 448**2, 896**2, 800 * 1333]
    assert bench.fit_exponent(pixels, [3e-3 * p**1.5 for p in pixels]) == pytest.approx(1.5)
    assert bench.fit_exponent(pixels, [7. * p for p in pixels]) == pytest.approx(1.0)
    assert math.isnan(bench.fit_exponent([224**2], [1.]))
    assert bench.parse_size(224) == (224, 224) and bench.parse_size('800x1333') == (800, 1333)
    assert bench.parse_size([64, 96]) == (64, 96) and bench.parse_size('96') == (96, 96)
    for bad in ('224x', 'abc', 0, '0x5'):
        with pytest.raises(ValueError, match='size'):
            bench.parse_size(bad)


def test_model_names(bench):
    labels = {name: bench.resolve_model(name).label for name in bench.DEFAULT_MODELS}
    assert labels == {
        'msmlp-t': 'MS-MLP-T', 'posmlp-t-gqpe': 'PosMLP-T (GQPE)', 'posmlp-t-lrpe': 'PosMLP-T (LRPE)',
        'stripmlp-t': 'Strip-MLP-T', 'swin-msmlp-t': 'Swin+MS-MLP-T (ms_shift)', 'swin-t': 'Swin-T (mmpretrain)',
        'convnext-t': 'ConvNeXt-T (mmpretrain)'}
    assert bench.resolve_model('posmlp-s').label == 'PosMLP-S (GQPE)'
    assert bench.resolve_model('stripmlp-lt').label == 'Strip-MLP-T*'
    assert bench.resolve_model('swin-msmlp-t:ms_early').label == 'Swin+MS-MLP-T (ms_early)'
    for bad, match in (('resnet-50', 'unknown model'), ('msmlp-x', 'unknown model'), ('msmlp-t:ms_all', 'PATTERN'),
                       ('posmlp-t-rpe', 'unknown model')):
        with pytest.raises(ValueError, match=match):
            bench.resolve_model(bad)
    # the presets are the documented ones: parameter counts with a 1000-class head (built on the meta device)
    for name, params in (('msmlp-t', 28_656_232), ('posmlp-t-lrpe', 21_397_554), ('stripmlp-t', 24_903_920)):
        with torch.device('meta'):
            backbone = bench.resolve_model(name).build(False, (224, 224))
        width = backbone.embed_dims[-1]
        assert sum(p.numel() for p in backbone.parameters()) + width * 1000 + 1000 == params, name
    with torch.device('meta'):
        dense = bench.resolve_model('msmlp-t').build(True, (224, 224))
    assert dense.out_indices == (0, 1, 2, 3) and not dense.gap_before_final_norm


def test_write_report_section(bench, tmp_path):
    path = tmp_path / 'doc.md'
    path.write_text('intro\n<!-- benchmark:table:begin -->\nold\n<!-- benchmark:table:end -->\noutro\n')
    bench.write_report(str(path), 'new table\n', section='table')
    assert path.read_text() == ('intro\n<!-- benchmark:table:begin -->\nnew table\n<!-- benchmark:table:end -->\n'
                                'outro\n')
    with pytest.raises(ValueError, match='no section'):
        bench.write_report(str(path), 'x', section='scaling')
    with pytest.raises(ValueError, match='does not exist'):
        bench.write_report(str(tmp_path / 'missing.md'), 'x', section='table')


def test_command_line(bench, tmp_path, capsys):
    out, raw = tmp_path / 'report.md', tmp_path / 'raw.json'
    bench.main(['msmlp-t', '--reference', 'msmlp-t', '--size', '32', '--batch', '1', '--train-batch', '1',
                '--repeats', '1', '--train-repeats', '1', '--warmup', '0', '--threads', '1', '--no-flops',
                '--no-memory', '--profile', '3', '--profile-train', '--out', str(out), '--json', str(raw)])
    text = out.read_text()
    assert '| MS-MLP-T | `msmlp-t` | 28.66 | n/a |' in text and '| 1.00 | 1.00 | n/a | n/a |' in text
    assert text in capsys.readouterr().out
    profile = text.split('top operators by self CPU time:')[1].split('Profile of one training step')[0]
    profile = profile.strip().splitlines()
    assert profile[0] == '| operator | self CPU (ms) | share | calls |' and len(profile) == 2 + 3
    assert all(line.startswith('| `aten::') for line in profile[2:])
    train = text.split('top operators by self CPU time (forward and backward):')[1].strip().splitlines()
    assert train[0] == '| operator | self CPU (ms) | share | calls |' and len(train) == 2 + 3
    # the training step runs the backward: some autograd operator is among the top three
    assert any('backward' in line or 'mm' in line for line in train[2:])
    result = json.loads(raw.read_text())
    assert result['settings']['size'] == [32, 32] and result['rows'][0]['params'] == 28_656_232
    assert [p['percent'] for p in result['rows'][0]['profile']] == sorted(
        (p['percent'] for p in result['rows'][0]['profile']), reverse=True)
