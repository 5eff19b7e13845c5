"""tools/analysis_tools/vis_featmap.py: the four stage outputs of a nano MS-MLP drawn with mmengine's
``Visualizer.draw_featmap`` into one image; errors on bad input."""
import os.path as osp

import mmcv
import numpy as np
import pytest

from helpers_mmmixer import REPO, load_tool

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'vis_featmap.py')
NANO = osp.join(REPO, 'configs', 'demo', 'msmlp-nano_1xb64-40e_digits.py')


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL, 'mmmixer_vis_featmap_tool')


def test_four_stage_panels(tool, tmp_path):
    out = str(tmp_path / 'f.png')
    strip = tool.main([NANO, '--size', '64', '--out', out])
    assert strip.shape == (64, 4 * 64 + 3 * 4, 3)
    np.testing.assert_array_equal(mmcv.imread(out, channel_order='rgb'), strip)
    panels = [strip[:, i * 68:i * 68 + 64] for i in range(4)]
    # every stage draws its own map over the same picture: no two panels are equal
    assert all(not np.array_equal(panels[i], panels[j]) for i in range(4) for j in range(i + 1, 4))


def test_bad_input(tool, tmp_path):
    with pytest.raises(SystemExit, match='--channel-reduction must be squeeze_mean or select_max'):
        tool.main([NANO, '--channel-reduction', 'mean', '--out', str(tmp_path / 'f.png')])
    with pytest.raises(SystemExit, match='is not a readable picture'):
        tool.main([NANO, '--image', str(tmp_path / 'none.jpg'), '--out', str(tmp_path / 'f.png')])
    with pytest.raises(SystemExit, match='smaller than the total stride'):
        tool.main([NANO, '--size', '16', '--out', str(tmp_path / 'f.png')])
