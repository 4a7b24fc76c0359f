"""The README is the user's manual and the docs are its pages: every relative link and image in
README.md and docs/*.md must resolve (a ``#anchor`` to a heading, as GitHub names it), the README
stays short and keeps its sections in the order a user needs them, and no docs page is orphaned.

Why: pages move (issue 33 split the README into docs/); a link that points at a moved section or a
renamed image fails silently on GitHub, so it must fail here.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
PAGES = [README, *sorted((ROOT / 'docs').glob('*.md'))]
MAX_README_LINES = 250

#: README headings a user looks for, in the order they must appear (matched on GitHub's slug).
README_SECTIONS = [
    r'set-up',                      # the two commands: make demo, make test
    r'quick-start',
    r'search',
    r'retrain',
    r'detection-with-our-tools',
    r'detection-with-mmdets-own-tools',
    r'model-zoo',
    r'several-gpus-and-machines',
    r'what-has-and-has-not-run-on-a-gpu',
    r'how-close-to-the-papers',
    r'evidence',
    r'documentation',
]

_FENCE = re.compile(r'^(```|~~~)')
_HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
_INLINE_CODE = re.compile(r'`[^`\n]*`')
_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
_HTML_SRC = re.compile(r'<(?:img|a)\b[^>]*?\b(?:src|href)="([^"]+)"', re.I)


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fenced = [], False
    for no, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append((no, line))
    return out


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: link markup and code ticks dropped, lower case, every
    character but letters, digits, '_', '-' and spaces removed, spaces turned into '-'."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    text = text.replace('`', '').lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def headings(path: Path) -> list[str]:
    return [m.group(2) for _, line in _prose_lines(path.read_text(encoding='utf-8'))
            if (m := _HEADING.match(line))]


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub gives the page's headings (a repeated slug gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for h in headings(path):
        slug = github_slug(h)
        n = seen.get(slug, 0)
        out.add(slug if n == 0 else f'{slug}-{n}')
        seen[slug] = n + 1
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every markdown link, image and HTML src/href outside code."""
    out = []
    for no, line in _prose_lines(path.read_text(encoding='utf-8')):
        line = _INLINE_CODE.sub('', line)
        out += [(no, m.group(1)) for m in _LINK.finditer(line)]
        out += [(no, m.group(1)) for m in _HTML_SRC.finditer(line)]
    return out


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One message per relative link of ``path`` that names no file, or no heading of that file
    (paths in the messages relative to ``root``)."""
    bad = []
    for no, target in links(path):
        if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):        # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition('#')
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f'{path.relative_to(root)}:{no}: {target}'
        if not dest.exists():
            bad.append(f'{where}: no such file')
        elif anchor and dest.suffix == '.md' and anchor not in anchors(dest):
            bad.append(f'{where}: no heading #{anchor} in {dest.relative_to(root)}')
    return bad


@pytest.mark.parametrize('page', PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_checker_catches_a_broken_link_and_anchor(tmp_path: Path) -> None:
    """The checker itself: a missing file, a missing image and a missing anchor are each reported;
    code spans and fenced blocks are not links."""
    (tmp_path / 'other.md').write_text('# Other page\n\n## Model zoo: how it was measured\n')
    page = tmp_path / 'page.md'
    page.write_text('# T\n\n[ok](other.md#model-zoo-how-it-was-measured) [gone](missing.md)\n'
                    '![img](images/none.png) [bad anchor](other.md#no-such-heading) [self](#t)\n'
                    '`[code](not-a-link.md)`\n```\n[fenced](also-not.md)\n```\n')
    bad = broken_links(page, root=tmp_path)
    assert len(bad) == 3, bad
    assert any('missing.md' in b for b in bad) and any('none.png' in b for b in bad)
    assert any('#no-such-heading' in b for b in bad)


def test_github_slug() -> None:
    assert github_slug("Detection with mmdet's own tools") == 'detection-with-mmdets-own-tools'
    assert github_slug('Set-up: what `tools/setup_env.sh` does') == 'set-up-what-toolssetup_envsh-does'
    assert github_slug('The [glyphs](x.md): 3 seeds') == 'the-glyphs-3-seeds'


def test_readme_is_short() -> None:
    n = len(README.read_text(encoding='utf-8').splitlines())
    assert n <= MAX_README_LINES, f'README.md has {n} lines (at most {MAX_README_LINES}): move detail to docs/'


def test_readme_sections_in_order() -> None:
    slugs = [github_slug(h) for h in headings(README)]
    pos = 0
    for want in README_SECTIONS:
        hit = next((i for i in range(pos, len(slugs)) if re.match(want, slugs[i])), None)
        assert hit is not None, f'README: no heading matching {want!r} after {slugs[pos - 1] if pos else "the top"}'
        pos = hit + 1


def test_readme_evidence_summary_is_short() -> None:
    """The README summarises the evidence in at most 15 lines; the tables live in docs/evidence.md."""
    text = README.read_text(encoding='utf-8')
    section = re.search(r'^## Evidence[^\n]*\n(.*?)(?=^## |\Z)', text, re.S | re.M)
    assert section, 'README: no "## Evidence" section'
    body = [line for line in section.group(1).splitlines() if line.strip()]
    assert len(body) <= 15, f'README\'s evidence summary has {len(body)} lines (at most 15)'
    assert '(docs/evidence.md)' in section.group(1)


def test_readme_keeps_the_two_commands() -> None:
    """The contract: on a fresh machine `make demo` runs the main job and `make test` the tests
    (.ci/run runs exactly `make test`)."""
    text = README.read_text(encoding='utf-8')
    block = re.search(r'```bash\n(.*?)```', text, re.S)
    assert block, 'README: no bash block'
    commands = [line.split('#')[0].strip() for line in block.group(1).splitlines()]
    assert commands[:2] == ['make demo', 'make test'], commands


def test_readme_indexes_every_docs_page() -> None:
    linked = {(README.parent / t.partition('#')[0]).resolve() for _, t in links(README)}
    orphans = [p.name for p in sorted((ROOT / 'docs').glob('*.md')) if p.resolve() not in linked]
    assert orphans == [], f'docs pages not linked from the README: {orphans}'


@pytest.mark.parametrize('page', PAGES[1:], ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_page_opens_with_what_it_gives(page: Path) -> None:
    """Each page starts with its title and then prose (what the reader gets), not a heading or code."""
    lines = [line for line in page.read_text(encoding='utf-8').splitlines() if line.strip()]
    assert lines[0].startswith('# '), f'{page.name}: first line is not a title'
    assert not lines[1].startswith(('#', '```', '|')), f'{page.name}: no opening sentence after the title'
