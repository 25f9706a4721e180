"""Guarding a model directory: an exclusive lock per training run, and overwriting only rnnlab's files.

A training run holds `fcntl.flock` on MODEL_DIR/.rnnlab.lock (non-blocking) for its whole length, so a
second run on the same directory fails at once naming the first one's pid. `--overwrite` removes only
the files rnnlab itself writes, and only in a directory whose config.json rnnlab wrote; anything else
there (a user's notes, a foreign config.json) is left alone or refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from rnnlab import _io
from rnnlab.errors import ModelDirError

LOCK = ".rnnlab.lock"
# The temp files rnnlab._io's atomic writes use: tempfile.mkstemp(prefix=".NAME.", suffix=".tmp").
_TEMP_FILE = re.compile(r"\.[^/]+\.[a-z0-9_]{8}\.tmp")

try:  # POSIX only; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class DirLock:
    """An exclusive, non-blocking lock on `directory` (created if missing) held until `release`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK
        self._fd: int | None = None

    def acquire(self) -> DirLock:
        if self.directory.exists() and not self.directory.is_dir():
            raise ModelDirError(f"{self.directory} exists and is not a directory")
        _io.make_dir(self.directory)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask, as open()
        except OSError as exc:
            raise ModelDirError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                try:
                    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                finally:
                    os.close(fd)
                raise ModelDirError(f"{self.directory} is in use by another rnnlab run (pid {holder}); wait "
                                    f"for it to finish or stop it") from None
        # The pid only names the holder in the message above; a full disk must not stop a run for it.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing drops the flock; the file stays (unlinking it would race a waiting run)

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def exclusive_run(directory: Path):
    """Hold the directory's lock for a whole run; if the run fails having written nothing into a
    directory this call created, remove that directory again (a failed run leaves no trace)."""
    directory = Path(directory)
    created = not directory.exists()
    lock = DirLock(directory).acquire()
    try:
        yield lock
    except BaseException:
        if created and not entries(directory):
            with contextlib.suppress(OSError):
                lock.path.unlink()
                directory.rmdir()
        raise
    finally:
        lock.release()


def entries(directory: Path) -> list[Path]:
    """What `directory` holds, not counting rnnlab's lock file."""
    try:
        return [p for p in Path(directory).iterdir() if p.name != LOCK]
    except OSError:
        return []


def is_rnnlab_model_dir(directory: Path) -> bool:
    """True when config.json is the one rnnlab's checkpoint.write_config writes (format_version + sections)."""
    config = Path(directory) / "config.json"
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(raw, dict) and isinstance(raw.get("format_version"), int)
            and isinstance(raw.get("model"), dict) and isinstance(raw.get("data"), dict)
            and isinstance(raw.get("train"), dict))


def remove_files(directory: Path, names) -> list[Path]:
    """Delete the named files (and rnnlab's stale temp files of them) from `directory`; nothing else."""
    directory = Path(directory)
    names = set(names)
    removed = []
    for path in entries(directory):
        ours = path.name in names or (_TEMP_FILE.fullmatch(path.name) is not None
                                      and path.name[1:].rsplit(".", 2)[0] in names)
        if ours and (path.is_symlink() or path.is_file()):
            path.unlink()
            removed.append(path)
    return removed


def prepare_run_dir(out_dir: Path, overwrite: bool, is_main: bool, data: tuple[str, ...] = ()) -> None:
    """Check (and make) a new training run's directory before anything is written.

    It must be empty or missing, or `overwrite` given and the directory one rnnlab made; the old run's files
    are replaced only at the new run's first write. `data`: entries that are the run's data, not a run (the
    corpus's token store), so they never make a directory "not empty".
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelDirError(f"{out_dir} exists and is not a directory")
    if out_dir.exists() and [p for p in entries(out_dir) if p.name not in data]:
        if not overwrite:
            raise ModelDirError(f"{out_dir} already exists; pass --overwrite to replace it or --resume "
                                f"to continue its run")
        if not is_rnnlab_model_dir(out_dir):
            what = "holds a config.json rnnlab did not write" if (out_dir / "config.json").exists() else \
                "is not empty and is not an rnnlab model directory"
            raise ModelDirError(f"{out_dir} {what}; refusing to overwrite it (choose another -o)")
    if is_main:
        _io.make_dir(out_dir)
