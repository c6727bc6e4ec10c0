"""The documentation's Python snippets run.

Every fenced Python block of README.md and of the docs site's pages
(`DOCUMENTS`: docs/**/*.md) is one of:

- a script: run in a fresh interpreter with the `BENTO_*` variables naming
  an emulator, as a reader would run it with `bento-track emulator` going;
  it must exit 0, and every event type it tracks must reach the emulator;
- a test module (it defines `test_` functions): run by pytest in a fresh
  process, with no `BENTO_*` set, as a reader's own suite would, so the
  fixtures it uses are the ones it defines or the plugin's;
- a fragment, marked by an HTML comment on the line before its fence
  (invisible on GitHub and in rendered pages), with a word on why:

      <!-- fragment: needs your Flask app -->
      ```python
      app.wsgi_app = BentoWSGIMiddleware(app.wsgi_app, events=...)
      ```

  Fragments are not run; anything else that is Python is.

`code_blocks(path)` and `run_block()` are the whole mechanism; a page added
under docs/ is covered as it is (tests/test_docs.py checks the rest of the
site).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bento_track.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parent.parent
#: the Markdown files whose Python blocks must run or be marked: the README
#: and every page of the docs site
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<language>[\w+-]*)")
FRAGMENT = re.compile(r"^\s*<!--\s*fragment\b.*-->\s*$")
# What a script tracks: `track("type", ...)` and a log record's
# `extra={"bento": {"type": "...", ...}}`.
TRACKED = re.compile(
    r"""\btrack\(\s*["']([^"']+)["']|["']type["']:\s*["']([^"']+)["']"""
)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown document."""

    path: Path
    #: the 1-based line of the opening fence
    line: int
    language: str
    code: str
    #: marked `<!-- fragment ... -->` on the line before the fence
    fragment: bool

    @property
    def name(self) -> str:
        """`README.md:123`, as test ids and failures show it."""
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def python(self) -> bool:
        """A Python block (`python` or `py` after the fence)."""
        return self.language.lower() in {"python", "py", "python3"}

    @property
    def test_module(self) -> bool:
        """A block that defines tests: run by pytest, not as a script."""
        return re.search(r"^\s*def test_", self.code, re.MULTILINE) is not None

    def tracked_types(self) -> set[str]:
        """The event types this block tracks, as written in it."""
        return {a or b for a, b in TRACKED.findall(self.code)}


def code_blocks(path: Path) -> list[Block]:
    """Every fenced code block in the Markdown file at `path`, in order.

    Raises:
        ValueError: a fence is never closed, or a fragment marker is not
            right before a fence (a marker left behind by an edit).
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        text = lines[index]
        if FRAGMENT.match(text):
            if index + 1 >= len(lines) or not FENCE.match(lines[index + 1]):
                raise ValueError(
                    f"{path.name}:{index + 1}: a fragment marker must be on the "
                    "line right before a code block's fence"
                )
        opening = FENCE.match(text)
        if not opening:
            index += 1
            continue
        fence = opening["fence"]
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        if index >= len(lines):
            raise ValueError(f"{path.name}:{start + 1}: the code block never ends")
        blocks.append(
            Block(
                path=path,
                line=start + 1,
                language=opening["language"],
                code=textwrap.dedent("\n".join(body)) + "\n",
                fragment=start > 0 and bool(FRAGMENT.match(lines[start - 1])),
            )
        )
        index += 1
    return blocks


def python_blocks() -> list[Block]:
    """The Python blocks of every document."""
    return [b for path in DOCUMENTS for b in code_blocks(path) if b.python]


RUNNABLE = [b for b in python_blocks() if not b.fragment]


def _environment(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BENTO_", "PYTEST_", "COV_"))
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def docs_emulator() -> Iterator[EmulatorServer]:
    """An emulator as `bento-track emulator` runs it: any sender address is
    an author (the README's `hello@acme.com`)."""
    with EmulatorServer(port=0) as server:
        yield server


def run_block(
    block: Block, folder: Path, emulator: EmulatorServer
) -> subprocess.CompletedProcess[str]:
    """Run `block` in `folder` as the module docstring says."""
    if block.test_module:
        (folder / "test_snippet.py").write_text(block.code, encoding="utf-8")
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        env = _environment()
    else:
        (folder / "snippet.py").write_text(block.code, encoding="utf-8")
        argv = [sys.executable, "snippet.py"]
        variables = {
            "BENTO_SITE_UUID": emulator.site_uuid,
            "BENTO_PUBLISHABLE_KEY": emulator.publishable_key,
            "BENTO_SECRET_KEY": emulator.secret_key,
            "BENTO_BASE_URL": emulator.base_url,
        }
        env = _environment(**variables)
    return subprocess.run(
        argv, cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.name for b in RUNNABLE])
def test_the_block_runs(
    block: Block, docs_emulator: EmulatorServer, tmp_path: Path
) -> None:
    docs_emulator.inspect.reset()
    done = run_block(block, tmp_path, docs_emulator)

    assert done.returncode == 0, (
        f"{block.name} failed (mark it <!-- fragment: why --> if it cannot run "
        f"alone):\n{block.code}\n{done.stdout}\n{done.stderr}"
    )
    if not block.test_module:
        received = {e["type"] for e in docs_emulator.inspect.events()}
        assert block.tracked_types() <= received, (block.name, received)


def test_every_python_block_is_run_or_marked() -> None:
    """What the parametrized test covers is what the documents hold: the
    runnable blocks are all the unmarked Python ones, and there are some."""
    blocks = python_blocks()
    assert {b.name for b in RUNNABLE} == {b.name for b in blocks if not b.fragment}
    assert len(RUNNABLE) >= 5
    assert any(b.test_module for b in RUNNABLE)


def test_the_testing_section_runs_whole() -> None:
    """The docs' "Testing your app" page has no fragment: its blocks are run
    by pytest, so every fixture they use is defined there or by the plugin
    (a missing one is pytest's `fixture 'client' not found`)."""
    section = [b for b in code_blocks(ROOT / "docs" / "testing.md") if b.python]
    assert section, "the Testing page has no Python block"
    assert not [b.name for b in section if b.fragment]
    assert any(b.test_module for b in section)


def test_the_parser_reads_markers_fences_and_mistakes(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n"
        "<!-- fragment: needs an app -->\n"
        "```python\napp.run()\n```\n\n"
        "```py\nimport bento_track\n```\n\n"
        "- a list item:\n\n"
        "  ```python\n  x = 1\n  ```\n\n"
        "```sh\nls\n```\n"
    )
    blocks = code_blocks(page)

    assert [(b.line, b.language, b.fragment) for b in blocks] == [
        (4, "python", True),
        (8, "py", False),
        (14, "python", False),
        (18, "sh", False),
    ]
    assert blocks[2].code == "x = 1\n"
    assert [b.python for b in blocks] == [True, True, True, False]

    page.write_text("<!-- fragment -->\n\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="right before"):
        code_blocks(page)
    page.write_text("```python\nx = 1\n")
    with pytest.raises(ValueError, match="never ends"):
        code_blocks(page)


def test_tracked_types_are_read_from_calls_and_log_records() -> None:
    block = Block(
        path=ROOT / "README.md",
        line=1,
        language="python",
        code=(
            'bento_track.track("account.signup", email="a@example.com")\n'
            'log.warning("x", extra={"bento": {"type": "payment.failed"}})\n'
            '@track_event("invoice.paid")\n'
        ),
        fragment=False,
    )
    assert block.tracked_types() == {"account.signup", "payment.failed"}
