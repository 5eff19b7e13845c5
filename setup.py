"""Install mmmixer. Regular (wheel) installs copy configs/, tools/ and model-index.yml into
``mmmixer/.mim`` so that ``mim train|test|run|search mmmixer`` work; ``setup.py develop`` links them instead.
PEP 660 editable installs (``pip install -e .`` with modern pip) get no ``.mim``: use
``python tools/train.py`` or ``mim train mmpretrain|mmdet|mmseg <config>`` there (README "Editable installs").
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

MIM_FILES = ('configs', 'tools', 'model-index.yml')


def add_mim_extension():
    """Copy (wheel/sdist) or symlink (develop) the mim files into ``mmmixer/.mim``.

    Same approach as mmpretrain's setup.py ``add_mim_extension``.
    """
    if 'develop' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel')):
        mode = 'copy'
    else:
        return
    root = osp.dirname(osp.abspath(__file__))
    mim_dir = osp.join(root, 'mmmixer', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(root, name), osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if not osp.exists(src):
            continue
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


def version():
    scope = {}
    with open(osp.join(osp.dirname(osp.abspath(__file__)), 'mmmixer', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmmixer',
        version=version(),
        description='Vision-MLP backbones (MS-MLP, PosMLP, Strip-MLP, Swin+MS-MLP) for OpenMMLab 2.0',
        long_description=open('README.md', encoding='utf-8').read(),
        long_description_content_type='text/markdown',
        license='Apache-2.0',
        python_requires='>=3.8',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
        include_package_data=True,
        install_requires=['torch>=2.0', 'mmengine>=0.10.0,<1.0.0', 'mmcv>=2.0.0,<2.2.0', 'numpy'],
        extras_require=dict(
            cls=['mmpretrain>=1.2.0'],
            det=['mmdet>=3.3.0', 'pycocotools'],
            seg=['mmsegmentation>=1.2.2', 'ftfy', 'regex'],
            tests=['pytest', 'scikit-learn'],
            # tools/analysis_tools (erf.py, vis_featmap.py, plot_benchmark.py) and mmpretrain's vis_cam.py;
            # grad-cam pulls opencv-python: next to opencv-python-headless prefer requirements/analysis.txt (--no-deps)
            analysis=['grad-cam==1.4.8', 'ttach', 'matplotlib', 'scikit-learn'],
            # mmmixer backbones in mmpose / mmaction2 configs. These pins alone do not install on this stack:
            # mmpose declares chumpy (fails to build) and opencv-python, mmaction2 opencv-contrib-python, the
            # xtcocotools wheels need numpy 1, and mmaction2 1.2.0 ships without localizers/drn. Use
            # requirements/pose_action.txt (--no-deps, xtcocotools from source) as tools/setup_env.sh does.
            pose=['mmpose==1.3.2', 'xtcocotools>=1.12', 'json_tricks', 'munkres'],
            action=['mmaction2==1.2.0', 'decord>=0.4.1', 'einops']),
        zip_safe=False)
