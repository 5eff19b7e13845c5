"""tools/analysis_tools/plot_benchmark.py on a JSON written by benchmark.py (one tiny timed model) and on
hand-made rows with eager and compiled modes; its errors on files without timings."""
import json
import os.path as osp

import pytest

from helpers_mmmixer import REPO, load_tool

TOOLS = osp.join(REPO, 'tools', 'analysis_tools')
TINY_MSMLP = osp.join(REPO, 'configs', 'msmlp', 'msmlp-tiny_8xb128_in1k.py') + \
    '::model.backbone.arch={"embed_dims":20,"depths":[1,1,1,1]}::model.head.in_channels=160' \
    '::model.head.num_classes=10'


def _load(name):
    return load_tool(osp.join(TOOLS, f'{name}.py'), f'mmmixer_{name}_tool')


@pytest.fixture(scope='module')
def tool():
    return _load('plot_benchmark')


def test_plot_from_benchmark_json(tool, tmp_path):
    import torch
    threads = torch.get_num_threads()
    bench_json = str(tmp_path / 'bench.json')
    try:
        _load('benchmark').main([TINY_MSMLP, '--size', '32', '--batch', '1', '--repeats', '1', '--warmup', '0',
                                 '--no-train', '--threads', '1', '--out', str(tmp_path / 'bench.md'), '--json',
                                 bench_json])
    finally:
        torch.set_num_threads(threads)
    out = str(tmp_path / 'plot.png')
    rows = tool.main([bench_json, '--out', out, '--pdf'])
    assert osp.getsize(out) > 0 and osp.getsize(str(tmp_path / 'plot.pdf')) > 0
    (r, ) = rows
    assert r['mode'] == 'eager' or r['mode'].startswith('eager')
    assert r['gflops_per_s'] == pytest.approx(r.get('infer_gflops') or r['flops'] * r['infer_ips'] / 1e9)


def test_modes_sizes_and_achieved_rate(tool, tmp_path):
    rows = [dict(label='a', size=[224, 224], params=2e6, flops=1e9, infer_ips=10.),
            dict(label='a', size=[224, 224], params=2e6, flops=1e9, infer_ips=20., compiled=True),
            dict(label='b', size=[256, 256], params=3e6, flops=2e9, infer_ips=5., mode='eager bf16',
                 infer_gflops=11.)]
    path = tmp_path / 'rows.json'
    path.write_text(json.dumps(dict(rows=rows)))
    got = tool.load_rows([str(path)])
    assert [(r['name'], r['mode'], r['gflops_per_s']) for r in got] == [
        ('a @224x224', 'eager', 10.), ('a @224x224', 'compiled', 20.), ('b @256x256', 'eager bf16', 11.)]
    assert tool.plot(got, str(tmp_path / 'p.png')) == [str(tmp_path / 'p.png')]
    rows[0]['label'] = 'a out_indices=[0, 1, 2, 3] gap_before_final_norm=False'  # as benchmark.label_of writes it
    path.write_text(json.dumps(dict(rows=rows)))
    assert [r['name'] for r in tool.load_rows([str(path)], short=True)][:2] == ['a @224x224'] * 2


def test_scaling_exponent_and_plot(tool, tmp_path):
    # time proportional to pixels**0.5 for 'a', to pixels for 'b'; 'c' has one size and no curve
    rows = [dict(label=n, size=[s, s], params=1e6, flops=1e9, infer_ips=1e3 / t)
            for n, e in (('a', 0.5), ('b', 1.0)) for s in (100, 200, 400) for t in [(s * s / 1e4) ** e]]
    rows.append(dict(label='c', size=[100, 100], params=1e6, flops=1e9, infer_ips=1.))
    path = tmp_path / 'scaling.json'
    path.write_text(json.dumps(dict(rows=rows)))
    got = tool.scaling_exponents(tool.load_rows([str(path)]))
    assert sorted(got) == [('a', 'eager'), ('b', 'eager')]
    assert got[('a', 'eager')][1] == pytest.approx(0.5) and got[('b', 'eager')][1] == pytest.approx(1.0)
    assert got[('b', 'eager')][0] == [(0.01, pytest.approx(1.)), (0.04, pytest.approx(4.)), (0.16, pytest.approx(16.))]
    tool.main([str(path), '--out', str(tmp_path / 'p.png'), '--scaling', str(tmp_path / 's.png')])
    assert osp.getsize(str(tmp_path / 's.png')) > 0
    with pytest.raises(ValueError, match='--scaling needs models timed at two or more sizes'):
        tool.scaling_exponents(tool.load_rows([str(path)])[-1:])


def test_bad_input(tool, tmp_path):
    complexity_only = tmp_path / 'c.json'
    complexity_only.write_text(json.dumps(dict(rows=[dict(label='a', params=1, flops=1, infer_ips=None)])))
    with pytest.raises(SystemExit, match='no row has both flops and infer_ips'):
        tool.main([str(complexity_only), '--out', str(tmp_path / 'x.png')])
    other = tmp_path / 'o.json'
    other.write_text('[1, 2]')
    with pytest.raises(SystemExit, match='is not a benchmark.py --json file'):
        tool.main([str(other), '--out', str(tmp_path / 'x.png')])
