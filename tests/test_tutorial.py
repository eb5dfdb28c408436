"""The tutorials are executed: every file they create and every command they show.

Conventions in the Markdown (kept simple so the tutorials stay readable):

* ``<!-- file: NAME -->`` / ``<!-- append: NAME -->`` before a fenced block
  writes / appends the block to NAME in the current directory;
* in a ``console`` block, lines starting with ``$ `` are commands, run one by
  one in a shell (``cd`` carries over); ``# exits with status N`` at the end
  of a command gives its expected status (default 0);
* shown output is checked where it is stable: ✓/✗ expectation lines (up to
  the actual value) and ``ledgersim:`` messages must appear verbatim.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "docs").glob("tutorial-*.md"))
STATUS = re.compile(r"\s+#\s*exits with status (\d+)\s*$")


@dataclass
class Step:
    kind: str  # "file", "append" or "command"
    text: str
    target: str = ""
    status: int = 0
    shown: list[str] = field(default_factory=list)


def parse_tutorial(text: str) -> list[Step]:
    steps: list[Step] = []
    lines = text.splitlines()
    marker: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        found = re.match(r"<!--\s*(file|append):\s*(\S+)\s*-->", line)
        if found:
            marker = (found.group(1), found.group(2))
        elif line.startswith("```"):
            lang = line[3:].strip()
            end = lines.index("```", i + 1)
            body = lines[i + 1 : end]
            if marker is not None:
                steps.append(Step(marker[0], "\n".join(body) + "\n", target=marker[1]))
            elif lang == "console":
                steps.extend(_commands(body))
            marker = None
            i = end
        i += 1
    return steps


def _commands(body: list[str]) -> list[Step]:
    steps: list[Step] = []
    for line in body:
        if line.startswith("$ "):
            command = line[2:]
            status = STATUS.search(command)
            steps.append(
                Step(
                    "command",
                    STATUS.sub("", command),
                    status=int(status.group(1)) if status else 0,
                )
            )
        elif steps:
            steps[-1].shown.append(line)
    return steps


def checked_lines(shown: list[str]) -> list[str]:
    """The parts of shown output that must appear verbatim in the real output."""
    out = []
    for line in shown:
        if line.lstrip().startswith(("✓", "✗")):
            out.append(line.split("  (got")[0])
        elif line.startswith("ledgersim:"):
            out.append(line)
    return out


def run_tutorial(path: Path, workdir: Path) -> None:
    shutil.copytree(ROOT / "scenarios", workdir / "scenarios")
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("HYPOTHESIS_PROFILE", None)
    cwd = workdir
    steps = parse_tutorial(path.read_text(encoding="utf-8"))
    assert any(s.kind == "command" for s in steps), f"{path.name} shows no commands"
    for step in steps:
        if step.kind in ("file", "append"):
            with open(cwd / step.target, "w" if step.kind == "file" else "a") as out:
                out.write(step.text)
            continue
        where = workdir / ".cwd"
        script = f'{step.text}\nstatus=$?\npwd > "{where}"\nexit $status\n'
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = done.stdout + done.stderr
        context = f"{path.name}: `{step.text}` (exit {done.returncode})\n{output[-3000:]}"
        assert done.returncode == step.status, context
        for expected in checked_lines(step.shown):
            assert expected in output, f"missing {expected!r}\n{context}"
        cwd = Path(where.read_text().strip())


def test_tutorials_exist() -> None:
    names = {p.name for p in TUTORIALS}
    assert {"tutorial-first-experiment.md", "tutorial-property-test.md"} <= names


def test_parser_reads_files_commands_statuses_and_output() -> None:
    text = (
        "<!-- file: a.toml -->\n```toml\nseed = 1\n```\n"
        "```console\n$ ledgersim run a.toml   # exits with status 1\n  ✗ x = 1  (got 2)\n"
        "ledgersim: boom\n$ ls\n```\n```toml\nnot = 'a file'\n```\n"
    )
    steps = parse_tutorial(text)
    assert [(s.kind, s.target, s.status) for s in steps] == [
        ("file", "a.toml", 0),
        ("command", "", 1),
        ("command", "", 0),
    ]
    assert steps[1].text == "ledgersim run a.toml"
    assert checked_lines(steps[1].shown) == ["  ✗ x = 1", "ledgersim: boom"]


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_as_written(path: Path, tmp_path: Path) -> None:
    run_tutorial(path, tmp_path)
