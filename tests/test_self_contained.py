"""The repository stands on its own: a fresh clone with nothing beside it runs every test.

(a) No tracked text file points outside the repository (a sibling ``shared`` folder, machine paths) or to the
    project's own tracker; links to other projects' tickets (``owner/repo#N``) are fine.
(b) Every citation of a documentation file (``docs/papers.md`` followed by a quoted section title,
    ``configs/<family>/README.md``, ...) names a file that exists and, when it quotes a section, a heading there.
(c) The vendored golden data (``tests/data/golden``) holds every file the golden tests read, unchanged, and the
    tests reach it only through the ``golden`` fixture, which fails (never skips) when files are missing.

The checks run on the text of the files only (no model is built), except the last one, which runs one golden test
in a subprocess against an empty directory.
"""
import ast
import glob
import hashlib
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from helpers_mmmixer import GOLDEN_DEFAULT, GOLDEN_FILES, REPO

# ----------------------------------------------------------------------------------------------------------------
# file inventory

_SKIP_DIRS = {'.git', 'build', 'dist', 'work_dirs', '__pycache__', '.mim', '.pytest_cache', 'data'}


def tracked_files():
    """Repository-relative paths of the tracked files (``git ls-files``; a walk of the tree without git)."""
    try:
        out = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, check=True).stdout
        files = [f for f in out.decode().split('\0') if f]
        if files:
            return files
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for root, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.endswith('.egg-info')]
        files += [osp.relpath(osp.join(root, n), REPO) for n in names]
    return files


def text_files():
    """``{path: text}`` of every tracked UTF-8 text file (checkpoints and other binaries are left out)."""
    texts = {}
    for rel in tracked_files():
        path = osp.join(REPO, rel)
        if not osp.isfile(path):
            continue
        with open(path, 'rb') as f:
            raw = f.read()
        if b'\0' in raw:
            continue
        try:
            texts[rel.replace(os.sep, '/')] = raw.decode('utf-8')
        except UnicodeDecodeError:
            continue
    return texts


@pytest.fixture(scope='module')
def texts():
    found = text_files()
    assert 'README.md' in found and 'docs/papers.md' in found and 'tests/conftest.py' in found, sorted(found)[:20]
    return found


def _line(text, pos):
    return text.count('\n', 0, pos) + 1


# ----------------------------------------------------------------------------------------------------------------
# (a) nothing outside the repository, nothing of our tracker

OUTSIDE = [
    (re.compile(r'\.\./shared\b'), 'a folder beside the repository'),
    (re.compile(r'\bshared/(?:golden|reference)\b'), 'the shared golden / reference folders'),
    (re.compile(r'(?<![\w.~-])/work/(?:main|shared|wt-)'), 'a path of the development machine'),
]
TRACKER = [
    (re.compile(r'\b[Ii]ssues?\s*(?:#\s*)?\d+'), 'an issue number'),
    (re.compile(r'(?<![\w/.#&-])#\d+\b'), 'a bare #N reference (write owner/repo#N for another project)'),
    (re.compile(r"\b(?:[Tt]he|[Oo]ur|[Tt]his) issue(?:'s)?\b|\b[Ii]ssue (?:author|text|tracker)\b"),
     'a ticket of our tracker'),
    (re.compile(r'\bissues\b'), 'the plural (our tracker)'),
]


def find_bad_references(texts, patterns=OUTSIDE + TRACKER):
    """``[(path, line, match, why)]`` of every forbidden reference in ``texts``."""
    bad = []
    for rel, text in sorted(texts.items()):
        for pattern, why in patterns:
            for m in pattern.finditer(text):
                bad.append((rel, _line(text, m.start()), m.group(0), why))
    return bad


def test_no_reference_outside_the_repository_or_to_our_tracker(texts):
    bad = find_bad_references(texts)
    assert not bad, 'references that a clone cannot follow:\n' + '\n'.join(
        f'  {rel}:{line}: {match!r} ({why})' for rel, line, match, why in bad)


def test_the_reference_check_can_fail():
    """The patterns catch what they are meant to catch, and leave other projects' issue links alone."""
    dot2 = '..'
    samples = {
        'a.py': f'# read {dot2}/shared' + '/gold' + 'en/x.pth',
        'b.md': 'see shared/' + 'reference/papers.md',
        'c.py': '"""From iss' + 'ue 7."""',
        'd.md': 'fixed by #' + '12',
        'e.md': 'as the is' + "sue's author measured",
        'f.md': 'known iss' + 'ues of the tracker',
    }
    flagged = {rel for rel, *_ in find_bad_references(samples)}
    assert flagged == set(samples), set(samples) - flagged
    fine = {'g.py': 'open-mmlab/mmengine#1655 and open-mmlab/mmsegmentation#3551; shared by every block; `#` 1'}
    assert find_bad_references(fine) == []


# ----------------------------------------------------------------------------------------------------------------
# (b) documentation citations resolve

#: a repository-rooted .md path (docs/..., configs/..., tests/...)
DOC_PATH = re.compile(r'(?<![\w./-])((?:docs|configs|tests)/[\w./-]*?\.md)\b')
#: a .md path followed by a quoted section, possibly continued on the next comment / docstring line
DOC_SECTION = re.compile(r'(?<![\w./-])((?:[\w.-]+/)*[\w.-]+\.md)`?,?\s*(?:#\s*)?"((?:[^"\n]|\n[ \t]*(?:#[ \t]*)?)+?)"')
#: a numbered section sign after a .md name
DOC_PARAGRAPH = re.compile(r'(?<![\w./-])((?:[\w.-]+/)*[\w.-]+\.md)`?,?\s*(?:#\s*)?(§\s*[\d.]+(?:-[\d.]+)?)')
HEADING = re.compile(r'^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$', re.M)


def _resolve(rel_file, cited, texts):
    """The tracked file a citation in ``rel_file`` names: repository-rooted, else relative to the citing file."""
    for candidate in (cited, osp.normpath(osp.join(osp.dirname(rel_file), cited)).replace(os.sep, '/')):
        if candidate in texts:
            return candidate
    return None


def find_bad_citations(texts):
    """``[(path, line, citation, why)]`` of documentation citations that do not resolve."""
    headings = {rel: set(HEADING.findall(text)) for rel, text in texts.items() if rel.endswith('.md')}
    bad = []
    for rel, text in sorted(texts.items()):
        for m in DOC_PATH.finditer(text):
            if _resolve(rel, m.group(1), texts) is None:
                bad.append((rel, _line(text, m.start()), m.group(1), 'no such file in the repository'))
        for m in DOC_SECTION.finditer(text):
            target = _resolve(rel, m.group(1), texts)
            if target is None:
                if m.group(1).startswith(('docs/', 'configs/', 'tests/')) or '/' not in m.group(1):
                    bad.append((rel, _line(text, m.start()), m.group(0), 'no such file in the repository'))
                continue
            section = re.sub(r'\s*\n[ \t]*(?:#[ \t]*)?', ' ', m.group(2)).strip()
            if section not in headings.get(target, ()):
                bad.append((rel, _line(text, m.start()), f'{m.group(1)}, "{section}"', f'no such heading in {target}'))
        for m in DOC_PARAGRAPH.finditer(text):
            bad.append((rel, _line(text, m.start()), m.group(0), 'cite a section by its title, not by a number'))
    return bad


def test_documentation_citations_resolve(texts):
    bad = find_bad_citations(texts)
    assert not bad, 'citations that do not resolve:\n' + '\n'.join(
        f'  {rel}:{line}: {cite!r}: {why}' for rel, line, cite, why in bad)


def test_papers_md_has_the_cited_sections(texts):
    """The sections the code cites most exist (a rename of docs/papers.md headings must update the citations)."""
    cited = set()
    for rel, text in texts.items():
        for m in DOC_SECTION.finditer(text):
            if m.group(1) == 'docs/papers.md':
                cited.add(re.sub(r'\s*\n[ \t]*(?:#[ \t]*)?', ' ', m.group(2)).strip())
    assert {'MS-MLP', 'PosMLP', 'Strip-MLP', 'Swin + MS-MLP hybrid', 'Official checkpoints',
            'Detection and segmentation recipes'} <= cited, cited


def test_the_citation_check_can_fail(texts):
    samples = dict(texts)
    # (split literals: this file itself is checked too)
    samples['x.py'] = ('# see docs/papers' + '.md, "No such section"\n# docs/' + 'nothing.md\n'
                       '# (docs/papers.md,\n# "Detection and segmentation\n# recipes") and papers.md §' + '4.2\n')
    bad = [(line, why) for rel, line, _, why in find_bad_citations(samples) if rel == 'x.py']
    assert [line for line, _ in bad] == [2, 1, 5], bad  # the multi-line citation of an existing section is fine


# ----------------------------------------------------------------------------------------------------------------
# (c) the golden data

GOLDEN_SUFFIXES = ('.official.pth', '.io.pth', '.keys.json', '.json')


def _pattern_of(node):
    """Regex for a string literal or f-string (each ``{...}`` part matches any text); None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        return ''.join(re.escape(v.value) if isinstance(v, ast.Constant) else '.+' for v in node.values)
    return None


def golden_references():
    """``[(test file, line, regex, via fixture)]`` for each golden file name the tests mention in code."""
    refs = []
    for path in sorted(glob.glob(osp.join(REPO, 'tests', '**', '*.py'), recursive=True)):
        tree = ast.parse(open(path, encoding='utf-8').read())
        joined = set()
        for node in ast.walk(tree):  # osp.join(golden, NAME)
            if isinstance(node, ast.Call) and getattr(node.func, 'attr', None) == 'join' and len(node.args) == 2 \
                    and isinstance(node.args[0], ast.Name) and node.args[0].id == 'golden':
                joined.add(id(node.args[1]))
        for node in ast.walk(tree):
            pattern = _pattern_of(node)
            if pattern is None or not pattern.endswith(tuple(re.escape(s) for s in GOLDEN_SUFFIXES)):
                continue
            # a family name, or any f-string joined to the fixture's directory (f'{name}.json' elsewhere is not ours)
            if re.match(r'(?:msmlp|posmlp|stripmlp)', pattern) or (pattern.startswith('.+') and id(node) in joined):
                refs.append((osp.relpath(path, REPO), node.lineno, pattern, id(node) in joined))
    return refs


def test_golden_files_are_all_vendored():
    missing = [f for f in GOLDEN_FILES if not osp.isfile(osp.join(GOLDEN_DEFAULT, f))]
    assert not missing, f'missing from {GOLDEN_DEFAULT}: {missing}'
    extra = sorted(set(os.listdir(GOLDEN_DEFAULT)) - set(GOLDEN_FILES) - {'README.md', 'SHA256SUMS'})
    assert not extra, f'files in {GOLDEN_DEFAULT} that GOLDEN_FILES (tests/helpers_mmmixer.py) does not list: {extra}'


def test_golden_files_are_unchanged():
    """The reference logits are the official code's; SHA256SUMS pins every file (tests/data/golden/README.md)."""
    sums = {}
    with open(osp.join(GOLDEN_DEFAULT, 'SHA256SUMS')) as f:
        for line in f:
            digest, name = line.split()
            sums[name] = digest
    assert sorted(sums) == sorted(GOLDEN_FILES)
    for name, digest in sums.items():
        with open(osp.join(GOLDEN_DEFAULT, name), 'rb') as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, f'{name} differs from the vendored original'


@pytest.mark.parametrize('name', sorted({f.split('.')[0] for f in GOLDEN_FILES if f.endswith('.io.pth')}))
def test_golden_model_files_fit_together(name):
    """Each small model's checkpoint, input/logits pair and listing describe the same model."""
    with open(osp.join(GOLDEN_DEFAULT, f'{name}.json')) as f:
        meta = json.load(f)
    ckpt = torch.load(osp.join(GOLDEN_DEFAULT, f'{name}.official.pth'), map_location='cpu', weights_only=True)
    state = ckpt[meta['checkpoint_key']]
    assert {k: list(v.shape) for k, v in state.items()} == meta['state_dict']
    io = torch.load(osp.join(GOLDEN_DEFAULT, f'{name}.io.pth'), map_location='cpu', weights_only=True)
    assert list(io['input'].shape) == meta['input_shape'] and list(io['logits'].shape) == meta['logits_shape']
    assert torch.isfinite(io['logits']).all()


def test_tests_read_golden_data_only_through_the_fixture():
    refs = golden_references()
    assert len(refs) >= 20, refs  # the converter, transfer, model-index and checkpoint tests
    outside = [(path, line, pattern) for path, line, pattern, via_fixture in refs if not via_fixture]
    assert not outside, f'golden files opened without osp.join(golden, ...): {outside}'
    unknown = [(path, line, pattern) for path, line, pattern, _ in refs
               if not any(re.fullmatch(pattern, f) for f in GOLDEN_FILES)]
    assert not unknown, f'golden files the tests read that GOLDEN_FILES does not list: {unknown}'


def test_missing_golden_data_fails_instead_of_skipping(tmp_path):
    """With MMMIXER_GOLDEN pointing at an empty folder a golden test errors out; nothing is skipped."""
    env = dict(os.environ, MMMIXER_GOLDEN=str(tmp_path))
    test = 'tests/test_utils/test_checkpoint.py::test_foreign_loader_on_official_golden_checkpoint'
    result = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', test], cwd=REPO,
                            env=env, capture_output=True, text=True)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert '1 error' in out and 'skipped' not in out and 'golden data incomplete' in out, out[-3000:]
