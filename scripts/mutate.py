"""Run the hand mutations of scripts/mutants.py: each, alone, in a scratch copy of the checkout
(tracked and untracked files as they are in the working tree; the checkout itself is never
touched), then the tests named to catch it. A mutant is caught when those tests fail, survived when
they pass, and an error when its old text is not found (exactly once) in its function, when the
tests cannot run (a node id that has gone: nothing collected), or when they give no verdict within
LIMIT seconds. Before any mutation the named tests run once as they are: they must pass, or no
verdict would mean anything.

Run it through scripts/mutants, which picks the interpreter. One line per mutant, then
"N caught, M survived"; the exit status is 1 when one survived or could not be judged.
"""

from __future__ import annotations

import argparse
import ast
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mutants import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 400.0  # seconds for one mutant's tests: more than pytest-timeout's 180 s for one hung test
PYTEST = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]


class Unusable(Exception):
    """The mutant cannot be applied to the code as it is now."""


def _named(node: ast.stmt) -> str | None:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def function_source(tree: ast.Module, source: str, dotted: str) -> tuple[int, int]:
    """Offsets in source of what dotted names: a function, a method (Class.name), a nested
    function (outer.inner), a class, or a module-level assignment (a table)."""
    body: list[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for part in dotted.split("."):
        node = next((n for n in body if _named(n) == part), None)
        if node is None:
            raise Unusable(f"no {dotted}")
        body = getattr(node, "body", [])
    assert node is not None and node.end_lineno is not None
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts[node.lineno - 1], starts[node.end_lineno]


def mutated(mutant: Mutant, source: str) -> str:
    """source with the mutant's change made in its function."""
    if not mutant.file.endswith(".py"):
        return _mutated_script(mutant, source)
    start, end = function_source(ast.parse(source), source, mutant.function)
    count = source.count(mutant.old, start, end)
    if count != 1:
        raise Unusable(f"the old text is {'not' if not count else f'{count} times'} in {mutant.function}")
    at = source.index(mutant.old, start, end)
    changed = source[:at] + mutant.new + source[at + len(mutant.old) :]
    try:
        ast.parse(changed)
    except SyntaxError as e:
        raise Unusable(f"the mutant is not Python: {e}") from None
    return changed


def _mutated_script(mutant: Mutant, source: str) -> str:
    """The change made in a JavaScript file's top-level function: from `function name(` to the
    next top-level function (the PAC helpers' file has nothing else between them)."""
    start = source.find(f"\nfunction {mutant.function}(")
    if start < 0:
        raise Unusable(f"no {mutant.function}")
    end = source.find("\nfunction ", start + 1)
    end = len(source) if end < 0 else end
    count = source.count(mutant.old, start, end)
    if count != 1:
        raise Unusable(f"the old text is {'not' if not count else f'{count} times'} in {mutant.function}")
    at = source.index(mutant.old, start, end)
    return source[:at] + mutant.new + source[at + len(mutant.old) :]


def write(path: Path, text: str) -> None:
    """Write a module, and drop its bytecode: a mutant of the same size, written within the same
    second, would otherwise be taken for the cached one."""
    path.write_text(text)
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        cached.unlink()


def scratch_copy() -> Path:
    """The checkout's files (tracked, and untracked unless ignored) as the working tree has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    copy = Path(tempfile.mkdtemp(prefix="ncfd-mutants-"))
    for name in listed.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():  # a deleted file is still listed until committed
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def run_tests(copy: Path, tests: str) -> tuple[str, str]:
    """The verdict of pytest on tests in copy: "failed", "passed" or "error", and its output."""
    env = dict(os.environ, PYTHONPATH=str(copy), CI="true")
    argv = [sys.executable, *PYTEST, *shlex.split(tests)]
    # A session of its own: at the limit, everything the tests started goes with them.
    with subprocess.Popen(
        argv, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    ) as proc:
        try:
            out = proc.communicate(timeout=LIMIT)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return "error", f"no verdict within {LIMIT:g} s"
    if proc.returncode < 0:  # the tests' own process crashed (a native stack overflow): not a pass
        return "failed", f"FAILED pytest killed by signal {-proc.returncode}"
    # pytest: 0 all passed, 1 some failed; 2-5 interrupted, internal error, usage, nothing collected.
    return {0: "passed", 1: "failed"}.get(proc.returncode, "error"), out


def node_ids(copy: Path, tests: str) -> list[str]:
    """The tests that tests names, as node ids that can be run together with others' (a -k
    expression cannot: pytest takes the last -k given)."""
    args = shlex.split(tests)
    if "-k" not in args:
        return args
    out = subprocess.run(
        [sys.executable, *PYTEST, "--collect-only", *args],
        cwd=copy,
        env=dict(os.environ, PYTHONPATH=str(copy), CI="true"),
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = [line for line in out.splitlines() if "::" in line]
    if not found:
        raise SystemExit(f"scripts/mutants: {tests!r} names no test:\n{out}")
    return found


def judge(mutant: Mutant, copy: Path) -> tuple[str, str]:
    path = copy / mutant.file
    original = path.read_text()
    try:
        write(path, mutated(mutant, original))
    except (Unusable, OSError, SyntaxError) as e:
        return "error", str(e)
    try:
        verdict, out = run_tests(copy, mutant.tests)
    finally:
        write(path, original)
    if verdict == "error":
        return "error", _tail(out)
    return ("caught", _first_failure(out)) if verdict == "failed" else ("survived", "")


def _first_failure(out: str) -> str:
    for line in out.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ", 1)[0].split(" ", 1)[1]
    return ""


def _tail(out: str) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    return " | ".join(lines[-3:])


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", metavar="SUBSTR", help="only the mutants whose name, file or function contains SUBSTR")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    parser.add_argument("-j", type=int, default=1, metavar="N", help="run N mutants at once (default 1)")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.k is None or any(args.k in s for s in (m.name, m.file, m.function))]
    if args.list:
        for m in chosen:
            try:
                mutated(m, (ROOT / m.file).read_text())
                state = ""
            except (Unusable, OSError, SyntaxError) as e:
                state = f"  (error: {e})"
            print(f"{m.name}  {m.file}:{m.function}{state}\n    breaks: {m.breaks}\n    tests: {m.tests}")
        return 0
    if not chosen:
        print(f"no mutant matches {args.k!r}", file=sys.stderr)
        return 2
    started = time.monotonic()
    copies: queue.Queue[Path] = queue.Queue()
    for _ in range(max(1, args.j)):
        copies.put(scratch_copy())
    try:
        every = " ".join(shlex.join(node_ids(copies.queue[0], t)) for t in dict.fromkeys(m.tests for m in chosen))
        verdict, out = run_tests(copies.queue[0], every)
        if verdict != "passed":
            print(f"the tests fail without any mutation: fix them first\n{out}", file=sys.stderr)
            return 2
        print(f"unmutated: the named tests pass ({time.monotonic() - started:.0f} s)", flush=True)

        def one(mutant: Mutant) -> str:
            copy = copies.get()
            try:
                began = time.monotonic()
                verdict, detail = judge(mutant, copy)
            finally:
                copies.put(copy)
            line = f"{verdict:8} {mutant.name} ({time.monotonic() - began:.0f} s)"
            print(line + (f": {detail}" if detail else ""), flush=True)
            return verdict

        with ThreadPoolExecutor(max(1, args.j)) as pool:
            verdicts = list(pool.map(one, chosen))
    finally:
        while not copies.empty():
            shutil.rmtree(copies.get(), ignore_errors=True)
    errors = verdicts.count("error")
    print(
        f"{verdicts.count('caught')} caught, {verdicts.count('survived')} survived"
        + (f", {errors} error{'s' if errors > 1 else ''}" if errors else "")
        + f" ({time.monotonic() - started:.0f} s)"
    )
    return 0 if verdicts.count("caught") == len(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
