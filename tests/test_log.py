"""Job logs: everything a job writes, from Python, C code or a child process, goes to its log
file and not to the console; Python's lines are timestamped."""

import re
import subprocess
import sys
import textwrap


def test_output_at_every_level_lands_in_the_log_and_not_on_the_console(tmp_path):
    log = tmp_path / "logs" / "job.log"
    script = textwrap.dedent(f"""
        import os, subprocess, sys
        from flopmetrics.jobs.log import logged
        print("before")
        with logged({str(log)!r}):
            print("from python")
            print("to stderr", file=sys.stderr)
            os.write(1, b"from the file descriptor\\n")  # as C code writes
            subprocess.run([sys.executable, "-c", "print('from a child')"], check=True)
        print("after")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert proc.stdout.split() == ["before", "after"] and proc.stderr == ""
    text = log.read_text()
    for line in ("from python", "to stderr", "from the file descriptor", "from a child"):
        assert line in text, line
    assert re.search(r"^\[\d\d:\d\d:\d\d\] from python$", text, re.M)
    assert re.search(r"^\[\d\d:\d\d:\d\d\] to stderr$", text, re.M)


def test_an_error_is_logged_with_its_traceback_and_still_raised(tmp_path):
    log = tmp_path / "job.log"
    script = textwrap.dedent(f"""
        from flopmetrics.jobs.log import logged
        with logged({str(log)!r}):
            raise ValueError("bad input x")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode != 0 and "ValueError: bad input x" in log.read_text()
