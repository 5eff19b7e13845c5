"""Plots of ``benchmark.py --json`` results: inference throughput against FLOPs and parameters, and the achieved
GFLOP/s of each model (eager and ``torch.compile`` side by side when the JSON has compiled rows).

    python tools/analysis_tools/plot_benchmark.py BENCH.json [BENCH.json ...] --out PNG

Reads the ``rows`` of each JSON (keys ``label``, ``params``, ``flops`` (multiply-adds per image), ``infer_ips``, and
optionally ``size``, ``mode`` (e.g. 'eager fp32', 'compiled bf16'), ``compiled`` (absent = eager) and
``infer_gflops``) and writes one figure with three panels: (a) inference images/s against GFLOPs per image, (b) the
same against millions of parameters (labelled points, one marker per mode), (c) achieved GFLOP/s = FLOPs per image x
images/s / 1e9 (``infer_gflops`` where the row has it), one bar per model and mode. The PNG goes to ``--out``; a PDF beside it with ``--pdf``.
"""
import argparse
import json
import os
import os.path as osp
from typing import List, Sequence


def load_rows(paths: Sequence[str]) -> List[dict]:
    """The timed rows of one or more benchmark JSON files, each with ``name`` (label, plus the size when the files
    hold several sizes), ``mode`` (the row's ``mode``, else 'compiled' / 'eager' from ``compiled``) and
    ``gflops_per_s``.

    Raises:
        ValueError: a file that is not benchmark JSON, or no row with both ``flops`` and ``infer_ips`` (e.g. a
            ``--complexity-only`` run).
    """
    rows = []
    for path in paths:
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
            rows += list(data['rows'])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f'plot_benchmark: {path} is not a benchmark.py --json file ({type(err).__name__}: '
                             f'{err}).') from None
    timed = [dict(r) for r in rows if r.get('flops') and r.get('infer_ips')]
    if not timed:
        raise ValueError('plot_benchmark: no row has both flops and infer_ips; run benchmark.py with timing (not '
                         '--complexity-only) and --json.')
    sizes = {tuple(r.get('size') or ()) for r in timed}
    for r in timed:
        r['mode'] = r.get('mode') or ('compiled' if r.get('compiled') else 'eager')
        r['name'] = r['label'] + (f' @{"x".join(map(str, r["size"]))}' if len(sizes) > 1 and r.get('size') else '')
        r['gflops_per_s'] = r.get('infer_gflops') or r['flops'] * r['infer_ips'] / 1e9
    return timed


def plot(rows: List[dict], out: str, pdf: bool = False, title: str = '') -> List[str]:
    """Draw the three panels of ``rows`` (from :func:`load_rows`) into ``out`` (and ``out`` with .pdf)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    modes = list(dict.fromkeys(r['mode'] for r in rows))
    for ax, key, scale, xlabel in ((axes[0], 'flops', 1e9, 'GFLOPs per image (multiply-adds)'),
                                   (axes[1], 'params', 1e6, 'parameters (M)')):
        for mode, marker in zip(modes, 'os^vDP*'):
            sel = [r for r in rows if r['mode'] == mode]
            ax.scatter([r[key] / scale for r in sel], [r['infer_ips'] for r in sel], marker=marker, label=mode)
            for r in sel:
                ax.annotate(r['name'], (r[key] / scale, r['infer_ips']), fontsize=7, xytext=(4, 3),
                            textcoords='offset points')
        ax.set_xlabel(xlabel)
        ax.set_ylabel('inference (images/s)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    names = list(dict.fromkeys(r['name'] for r in rows))
    width = 0.8 / len(modes)
    for j, mode in enumerate(modes):
        values = [next((r['gflops_per_s'] for r in rows if r['name'] == n and r['mode'] == mode), 0.)
                  for n in names]
        axes[2].bar([i + (j - (len(modes) - 1) / 2) * width for i in range(len(names))], values, width, label=mode)
    axes[2].set_xticks(range(len(names)))
    axes[2].set_xticklabels(names, rotation=35, ha='right', fontsize=7)
    axes[2].set_ylabel('achieved GFLOP/s (FLOPs x images/s)')
    axes[2].grid(axis='y', alpha=0.3)
    axes[2].legend(fontsize=8)
    for ax, name in zip(axes, 'abc'):
        ax.set_title(f'({name})', fontsize=9, loc='left')
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    paths = [out] + ([osp.splitext(out)[0] + '.pdf'] if pdf else [])
    for path in paths:
        fig.savefig(path, dpi=80)
    plt.close(fig)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('json', nargs='+', help='benchmark.py --json files')
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--pdf', action='store_true', help='also write a PDF beside the PNG')
    p.add_argument('--title', default='', help='figure title')
    args = p.parse_args(argv)
    try:
        rows = load_rows(args.json)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    paths = plot(rows, args.out, args.pdf, args.title)
    for r in rows:
        print(f'{r["name"]} ({r["mode"]}): {r["flops"] / 1e9:.3f} GFLOPs, '
              f'{r["params"] / 1e6:.2f} M params, {r["infer_ips"]:.1f} img/s, {r["gflops_per_s"]:.1f} GFLOP/s')
    print('wrote ' + ', '.join(paths))
    return rows


if __name__ == '__main__':
    main()
