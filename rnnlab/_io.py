"""Atomic, pickle-free persistence: every write goes to a temp file, is fsynced, then renamed.

A crash or a full disk mid-write therefore leaves the previous file intact, never a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rnnlab.errors import ModelDirError, RnnlabError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` and move the result onto `path` only once it is complete and on disk.

    Any I/O failure (an unwritable or missing directory, a full disk, a read-only file system), including
    creating the directory or the temp file, is an RnnlabError naming the file and the reason.
    """
    path = Path(path)
    tmp: Path | None = None
    with writing(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            write(tmp)
            # mkstemp makes 0600 files (and a writer may replace the file); give what open() would have
            os.chmod(tmp, 0o666 & ~_umask())
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            _discard(tmp)
            raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn an I/O failure inside the block into RnnlabError("could not write PATH: reason").

    For the writes that cannot be atomic (appending a line, creating a directory or a lock file).
    """
    try:
        yield
    except _write_errors() as exc:
        raise RnnlabError(f"could not write {path}: {_reason(exc)}") from exc


@contextlib.contextmanager
def scratch_file(directory: str | Path, name: str) -> Iterator[Path]:
    """A new, empty file of a unique name made from `name` in `directory`, for the block's use only: removed
    when the block ends, however it ends (the one file it removes is the one it made)."""
    path = Path(directory) / name
    with writing(path):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    try:
        yield Path(tmp_name)
    finally:
        _discard(Path(tmp_name))


def make_dir(directory: str | Path) -> Path:
    """mkdir -p, an unwritable parent or a file in the way being an RnnlabError naming `directory`."""
    directory = Path(directory)
    with writing(directory):
        directory.mkdir(parents=True, exist_ok=True)
    return directory


def _write_errors() -> tuple[type[BaseException], ...]:
    """OSError, and safetensors' SafetensorError (which is not one) when safetensors is installed."""
    try:
        from safetensors import SafetensorError
    except ImportError:
        return (OSError,)
    return (OSError, SafetensorError)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _discard(tmp: Path | None) -> None:
    if tmp is None:
        return
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, briefly, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ModelDirError(f"{path} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path} is not valid JSON: {exc}") from exc


def save_tensors(path: str | Path, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Write a dict of tensors as safetensors, atomically. Tensors are made contiguous CPU copies."""
    from safetensors.torch import save_file

    # Streamed into atomic_write's temp file: safetensors.torch.save would build the whole file in memory
    # first, about twice over (a 40 MB training state: some 80 MB more at every checkpoint). The writer
    # reports an I/O failure (a full disk too) as SafetensorError, which atomic_write turns into the
    # one-line error an OSError gets; atomic_write also gives the file its mode afterwards.
    flat = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=metadata))


def load_tensors(path: str | Path) -> dict:
    """Read a safetensors file; a missing, truncated or corrupt file is a ModelDirError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelDirError(f"{path} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelDirError(f"{path} is truncated or corrupt ({exc})") from exc


def load_tensor_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelDirError(f"{path} is truncated or corrupt ({exc})") from exc
