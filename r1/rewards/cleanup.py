"""Delete what a sandboxed program left on disk, without ever raising.

`shutil.rmtree` recurses once per directory level: 2,000 nested folders made it raise
RecursionError out of the code reward (the sample lost its 0 and its folder stayed on disk).
`remove_tree` walks with one directory descriptor at a time instead, so depth costs neither
recursion nor descriptors, and no path is ever longer than one name (a path past PATH_MAX cannot
stop it). Symbolic links are removed, never followed. What it cannot remove (a name the kernel refuses) is
skipped, so it always ends; nothing here raises. `remove_owned` clears what a slot uid left in
the world-writable folders, for machines where Landlock does not keep it inside its work dir.
"""

from __future__ import annotations

import os

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def remove_tree(path: str) -> None:
    """Remove `path` and everything below it, as far as the kernel allows; never raises.

    One directory descriptor is open at a time (the walk goes back up through ".."), so depth costs
    neither recursion nor descriptors: 2,000 levels pass under a 1,024-file limit. The walk runs
    after every process of the run is dead, so nothing moves the folders meanwhile."""
    try:
        fd = os.open(path, _DIR)
    except OSError:
        return
    failed: list[set[str]] = [set()]  # per level from the top: the names that could not be removed
    names: list[str] = []  # the name of each level below the top, in its parent
    while True:
        sub = _clear_files(fd, failed[-1])
        if sub is not None:
            try:
                child = os.open(sub, _DIR, dir_fd=fd)
            except OSError:
                failed[-1].add(sub)
                continue
            os.close(fd)
            fd, names = child, [*names, sub]
            failed.append(set())
            continue
        if not names:
            break
        try:
            parent = os.open("..", _DIR & ~os.O_NOFOLLOW, dir_fd=fd)
        except OSError:
            break
        os.close(fd)
        fd, name = parent, names.pop()
        failed.pop()
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError:
            failed[-1].add(name)
    os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _clear_files(fd: int, failed: set[str]) -> str | None:
    """Unlink the non-directories of the directory `fd`; return one subdirectory to descend into."""
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.name in failed:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    return entry.name
                try:
                    os.unlink(entry.name, dir_fd=fd)
                except OSError:
                    failed.add(entry.name)
    except OSError:
        pass
    return None


SHARED_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")  # where any uid may create files


def remove_owned(uid: int, folders: tuple[str, ...] = SHARED_FOLDERS, depth: int = 3) -> int:
    """Remove what ``uid`` created in world-writable ``folders`` (and world-writable folders inside
    them, ``depth`` levels down); how many entries went. For runs without Landlock, whose slot uid
    may write there (docs/sandbox.md); never raises."""
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid == uid:
                if entry.is_dir(follow_symlinks=False):
                    remove_tree(entry.path)
                else:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        continue
                removed += 1
            elif depth > 1 and entry.is_dir(follow_symlinks=False) and info.st_mode & 0o002:
                removed += remove_owned(uid, (entry.path,), depth - 1)
    return removed
