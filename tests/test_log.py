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


def test_a_handler_made_in_one_job_writes_into_the_next_jobs_log(tmp_path):
    # transformers makes its logging handler on first use, around sys.stderr of that moment; a
    # worker serving several jobs must not hand it a stream that closes with the first job
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    script = textwrap.dedent(f"""
        import logging, sys
        from flopmetrics.jobs.log import logged
        log = logging.getLogger("library")
        with logged({str(first)!r}):
            log.addHandler(logging.StreamHandler(sys.stderr))
            log.warning("first job")
        with logged({str(second)!r}):
            log.warning("second job")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert proc.stderr == ""
    assert "first job" in first.read_text() and "second job" not in first.read_text()
    text = second.read_text()
    assert "second job" in text and "Logging error" not in text, text
