import os
import stat

import pandas as pd
import pytest

from flopmetrics.jobs.output import atomic_path, write_parquet


def test_write_parquet_roundtrip_and_permissions(tmp_path):
    path = tmp_path / "sub" / "x.parquet"
    write_parquet(pd.DataFrame({"a": [1, 2]}), path)
    assert pd.read_parquet(path)["a"].tolist() == [1, 2]
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o044  # readable by others, not mkstemp's 0600
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.parquet"]


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "x.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half a parq")
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_old_file(tmp_path):
    path = tmp_path / "x.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), path)
    bad = pd.DataFrame({"a": [object()]})  # pyarrow cannot convert a bare object
    with pytest.raises(Exception):  # noqa: B017 - pyarrow raises one of several types
        write_parquet(bad, path)
    assert pd.read_parquet(path)["a"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


def test_a_killed_writes_leftover_is_removed_by_the_next_write(tmp_path):
    import os
    import time

    target = tmp_path / "fig.png"
    leftover = tmp_path / ".fig.png.k1ll3d.partial"  # what a kill -9 mid-save leaves
    leftover.write_bytes(b"half a figure")
    old = time.time() - 5
    os.utime(leftover, (old, old))
    other = tmp_path / ".other.png.x.partial"  # another file's: not touched
    other.write_bytes(b"")
    os.utime(other, (old, old))
    write_parquet(pd.DataFrame({"a": [1]}), target)
    assert target.exists() and not leftover.exists() and other.exists()
