"""The course cannot go stale: every python block of every chapter runs (tests/test_docs.py checks its links)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "docs" / "course"
CHAPTERS = sorted(COURSE.glob("[0-9][0-9]_*.md"))
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_the_course_has_its_ten_chapters_in_the_reading_order():
    assert [path.name[:2] for path in CHAPTERS] == [f"{number:02d}" for number in range(1, 11)]
    index = (COURSE / "README.md").read_text()
    for chapter in CHAPTERS:
        assert f"]({chapter.name})" in index, f"the reading order does not link {chapter.name}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_every_python_block_of_the_chapter_runs(chapter):
    blocks = PYTHON_BLOCK.findall(chapter.read_text())
    assert blocks, f"{chapter.name} has no python block"
    # One process per chapter, the blocks in order, as a reader runs them from the repository root.
    result = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, f"{chapter.name}:\n{result.stderr}"
    assert "Traceback" not in result.stdout


def test_the_figure_script_draws_what_needs_no_trained_run(tmp_path):
    result = subprocess.run([sys.executable, str(COURSE / "figures.py"), "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr
    drawn = {path.name for path in tmp_path.glob("*.png")}
    assert {"03_im2col.png", "05_batchnorm_graph.png", "07_optimizers.png"} <= drawn
    committed = {path.name for path in (COURSE / "figures").glob("*.png")}
    assert drawn <= committed, f"figures drawn but not committed: {sorted(drawn - committed)}"
