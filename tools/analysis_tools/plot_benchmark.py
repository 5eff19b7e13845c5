"""Plots of ``benchmark.py --json`` results: inference throughput against FLOPs and parameters, and the achieved
GFLOP/s of each model (eager and ``torch.compile`` side by side when the JSON has compiled rows).

    python tools/analysis_tools/plot_benchmark.py BENCH.json [BENCH.json ...] --out PNG [--scaling PNG]

Reads the ``rows`` of each JSON (keys ``label``, ``params``, ``flops`` (multiply-adds per image), ``infer_ips``, and
optionally ``size``, ``mode`` (e.g. 'eager fp32', 'compiled bf16'), ``compiled`` (absent = eager) and
``infer_gflops``) and writes one figure with three panels: (a) inference images/s against GFLOPs per image, (b) the
same against millions of parameters (labelled points, one marker per mode), (c) achieved GFLOP/s = FLOPs per image x
images/s / 1e9 (``infer_gflops`` where the row has it), one bar per model and mode. The PNG goes to ``--out``; a PDF
beside it with ``--pdf``.

``--scaling PNG`` (for a JSON timed at several ``--size`` values): milliseconds per image against megapixels per
image, one line per model and mode on log-log axes, with the dashed line of exactly linear cost through the smallest
size and the fitted exponent of time against pixels (1 = linear) in the legend.
"""
import argparse
import json
import os
import os.path as osp
import re
from typing import List, Sequence


def load_rows(paths: Sequence[str], short: bool = False) -> List[dict]:
    """The timed rows of one or more benchmark JSON files, each with ``name`` (label, plus the size when the files
    hold several sizes), ``mode`` (the row's ``mode``, else 'compiled' / 'eager' from ``compiled``) and
    ``gflops_per_s``. ``short=True`` drops the `` key=value`` override suffixes ``benchmark.py`` adds to labels.

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
    if short:
        for r in timed:
            r['label'] = re.split(r' [\w.]+=', r['label'])[0]
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


def scaling_exponents(rows: List[dict]) -> dict:
    """(label, mode) -> (sorted [(megapixels, ms per image)], exponent of a least-squares fit of log(ms) on log(px))
    for every model and mode timed at two or more sizes.

    Raises:
        ValueError: no model has two sizes with a ``size`` entry.
    """
    import numpy as np
    curves = {}
    for r in rows:
        if r.get('size'):
            curves.setdefault((r['label'], r['mode']), {})[r['size'][0] * r['size'][1] / 1e6] = 1e3 / r['infer_ips']
    out = {}
    for key, points in curves.items():
        if len(points) >= 2:
            pts = sorted(points.items())
            x, y = np.log([p for p, _ in pts]), np.log([t for _, t in pts])
            out[key] = (pts, float(np.polyfit(x, y, 1)[0]))
    if not out:
        raise ValueError('plot_benchmark: --scaling needs models timed at two or more sizes (benchmark.py --size 224 '
                         '448 800x1333 ...).')
    return out


def plot_scaling(rows: List[dict], out: str, title: str = '') -> List[str]:
    """ms per image against megapixels (log-log) per model, with the linear-cost line from the smallest size."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    curves = scaling_exponents(rows)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, ((label, mode), (pts, exponent)) in enumerate(curves.items()):
        color = f'C{i % 10}'
        px, ms = [p for p, _ in pts], [t for _, t in pts]
        modes = {m for _, m in curves}
        ax.plot(px, ms, 'o-', color=color, label=f'{label}{f" ({mode})" if len(modes) > 1 else ""}: '
                f'exponent {exponent:.2f}')
        ax.plot(px, [ms[0] * p / px[0] for p in px], '--', color=color, alpha=0.5, linewidth=1)
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('input megapixels per image')
    ax.set_ylabel('ms per image (inference)')
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=7, title='dashed: linear cost from the smallest size', title_fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return [out]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('json', nargs='+', help='benchmark.py --json files')
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--pdf', action='store_true', help='also write a PDF beside the PNG')
    p.add_argument('--title', default='', help='figure title')
    p.add_argument('--short', action='store_true', help='drop the key=value override suffixes from the labels')
    p.add_argument('--scaling', default=None, metavar='PNG', help='also plot ms per image against megapixels')
    args = p.parse_args(argv)
    try:
        rows = load_rows(args.json, args.short)
        scaling = scaling_exponents(rows) if args.scaling else {}
    except ValueError as err:
        raise SystemExit(str(err)) from None
    paths = plot(rows, args.out, args.pdf, args.title)
    if args.scaling:
        paths += plot_scaling(rows, args.scaling, args.title)
        for (label, mode), (pts, exponent) in scaling.items():
            print(f'{label} ({mode}): ' + ', '.join(f'{p:.3f} Mpx {t:.1f} ms' for p, t in pts)
                  + f'; exponent {exponent:.2f}')
    for r in rows:
        print(f'{r["name"]} ({r["mode"]}): {r["flops"] / 1e9:.3f} GFLOPs, '
              f'{r["params"] / 1e6:.2f} M params, {r["infer_ips"]:.1f} img/s, {r["gflops_per_s"]:.1f} GFLOP/s')
    print('wrote ' + ', '.join(paths))
    return rows


if __name__ == '__main__':
    main()
