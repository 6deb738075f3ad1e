"""LESSON.md, run as a learner follows it: every command block, in order, against
a real `make dev`, with the output the lesson shows checked.

Blocks, by their fence:
- ```sh               run to the end in a fresh shell; a ```text block right after
                      it is the output it must print (`...` matches anything).
- ```sh keep-running  left running in a terminal of its own (`make dev`,
                      `make worker`, a helper server); a ```text block right after
                      it lists lines its output must come to show.
- ```text log         lines that must come to show in the make dev terminal
                      (`text log make-worker`: in the `make worker` one).
- ```python           a quote of the code, not run (tests/test_docs.py keeps it true).
"""

import doctest
import re
from dataclasses import dataclass

import psutil
import pytest

from app.thoughts import accept
from harness.devstack import ROOT, DevStack, Process, redis_answers
from harness.polling import wait_for

# serial: the lesson runs `pkill -KILL -f 'jobs.pool|^rq:worker:'`, which would kill
# other tests' workers: make test runs it in a PID namespace of its own (bin/run-tests).
pytestmark = [pytest.mark.slow, pytest.mark.serial]

LESSON = ROOT / "LESSON.md"
FENCE = re.compile(r"^```([a-z]+)([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
OUTPUT_WAIT_SECONDS = 120
MATCH = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass
class Block:
    lang: str
    tags: str
    body: str
    line: int

    @property
    def where(self) -> str:
        return f"LESSON.md line {self.line}"


def lesson_blocks(text: str) -> list[Block]:
    return [
        Block(m[1], m[2].strip(), m[3], text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
    ]


def matches(want: str, got: str) -> bool:
    return doctest.OutputChecker().check_output(want.strip() + "\n", got.strip() + "\n", MATCH)


def shows_lines(want: str, lines: list[str]) -> bool:
    """Every line of `want` (but a lone `...`) matches some line of the output."""
    wanted = [w for w in want.strip().splitlines() if w.strip() != "..."]
    return all(any(matches(w, line) for line in lines) for w in wanted)


class LessonRun:
    """Walks the blocks in order, as a learner pastes them."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack

    def follow(self, blocks: list[Block]) -> None:
        for index, block in enumerate(blocks):
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            expected = (
                following
                if following
                and (following.lang, following.tags)
                == (
                    "text",
                    "",
                )
                else None
            )
            if block.lang == "sh" and block.tags == "keep-running":
                self.keep_running(block, expected)
            elif block.lang == "sh":
                self.run(block, expected)
            elif block.lang == "text" and block.tags.startswith("log"):
                self.wait_for_log(block)

    def run(self, block: Block, expected: Block | None) -> None:
        result = self.stack.run(block.body)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{block.where} exited {result.returncode}:\n{output}"
        if expected is not None:
            want = self.stack.localize(expected.body)
            assert matches(want, result.stdout), (
                f"{block.where} printed:\n{result.stdout}\nbut the lesson shows:\n{want}\n"
                f"The make dev terminal's last lines:\n{self.dev_tail()}"
            )

    def dev_tail(self, count: int = 80) -> str:
        terminal = self.stack.running("make dev")
        return "\n".join(terminal.lines[-count:]) if terminal else "(make dev is not running)"

    def keep_running(self, block: Block, expected: Block | None) -> None:
        proc = self.stack.start(block.body.strip())
        if expected is not None:
            self.wait_for_lines(proc, expected)

    def wait_for_log(self, block: Block) -> None:
        command = "make worker" if block.tags == "log make-worker" else "make dev"
        terminal = self.stack.running(command)
        assert terminal is not None, f"{block.where}: {command} is not running"
        self.wait_for_lines(terminal, block)

    def wait_for_lines(self, proc: Process, block: Block) -> None:
        want = self.stack.localize(block.body)
        try:
            wait_for(lambda: shows_lines(want, proc.lines), OUTPUT_WAIT_SECONDS, block.where)
        except AssertionError:
            tail = "\n".join(proc.lines[-60:])
            pytest.fail(
                f"{block.where}: never saw\n{want}\nin the output of {proc.command}:\n{tail}"
            )


def test_lesson_blocks_are_all_of_a_known_kind():
    kinds = {(b.lang, b.tags) for b in lesson_blocks(LESSON.read_text())}
    known = {("sh", ""), ("sh", "keep-running"), ("text", ""), ("text", "log"), ("python", "")}
    assert kinds <= known | {("text", "log make-worker")}


@pytest.mark.timeout(900)  # the whole lesson, its waits for retries and the sweeper included
def test_the_lesson_runs_as_written_and_ctrl_c_stops_everything(dev_stack):
    LessonRun(dev_stack).follow(lesson_blocks(LESSON.read_text()))
    assert "python-dotenv" not in dev_stack.dev.output()  # .env is loaded, not warned about

    redis_url = dev_stack.redis_url
    assert dev_stack.stop_dev() == [], "make dev left processes running after Ctrl-C"
    assert dev_stack.workers() == 0 and not redis_answers(redis_url)


def test_in_process_workers_leave_the_test_process_its_name(app, run_jobs):
    """The lesson kills `rq:worker:*` processes: pytest itself must never be one."""
    with app.test_request_context():
        accept("ada@example.com", "keep my name")
    run_jobs()
    assert not " ".join(psutil.Process().cmdline()).startswith("rq:worker:")
