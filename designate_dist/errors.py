"""The one error hierarchy of designate-dist.

Every error the tool raises on purpose derives from :class:`DistError` and
carries the exit code the CLI returns for it.  The CLI catches the base class
once and prints ``error: <message>``.
"""
from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PATCH = 3
EXIT_TESTS = 4
EXIT_VERIFY = 5


class DistError(Exception):
    """Base of every designate-dist error; ``exit_code`` is what the CLI returns."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(DistError):
    """Bad command line usage."""

    exit_code = EXIT_USAGE


class ConfigError(DistError):
    """A malformed or missing pin, series file or other distro input."""


class SeriesError(ConfigError):
    """A series file names a missing patch, misses a patch, or a patch is malformed."""


class ToolNotFound(DistError):
    """An external program the stage needs is not installed."""


class CommandFailed(DistError):
    """An external program exited non-zero."""

    def __init__(self, message: str, *, cmd: list[str] | None = None,
                 returncode: int | None = None, stdout: str = "",
                 stderr: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.cmd = cmd or []
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class DiskFull(DistError):
    """A write failed because the file system is full (or the user is over quota)."""


#: errno values that mean "no room to write", whatever was being written.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def os_failure(exc: OSError, doing: str, path: object = None) -> DistError:
    """The :class:`DistError` for an ``OSError`` met while ``doing`` something (exit 1).

    A full disk says so (:class:`DiskFull`); anything else keeps the system's
    message and the file it names (else ``path``, where it was writing).
    """
    place = exc.filename or path
    where = f" ({place})" if place else ""
    doing = f"{doing}: " if doing else ""
    if exc.errno in _NO_SPACE:
        return DiskFull(f"{doing}the disk is full{where}: {exc.strerror or exc}",
                        hint="free some space and run again; nothing half-written was kept")
    return DistError(f"{doing}{exc.strerror or exc}{where}")


class UnsafeTree(DistError):
    """A tree to be packaged holds a symbolic link that leads outside it."""


class GitError(DistError):
    """A git operation failed; git's own message is kept."""


class DirtyWorkTree(DistError):
    """The work tree has changes that a stage would overwrite."""


class BuildLocked(DistError):
    """Another build holds the lock of this distribution repository."""


class PatchApplyError(DistError):
    """A patch of the series does not apply."""

    exit_code = EXIT_PATCH

    def __init__(self, message: str, *, patch: str = "", files: list[str] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.patch = patch
        self.files = files or []


class TestsFailed(DistError):
    """Upstream's unit tests failed on the patched tree."""

    exit_code = EXIT_TESTS
    __test__ = False  # not a test case, whatever pytest thinks of the name


class ReleaseRefused(DistError):
    """The repository is not in a state a release can be made from; nothing was changed."""


class StaleBuild(DistError):
    """The build output does not come from HEAD's inputs."""


class PublishConflict(DistError):
    """A published repository already has a file of that name with other bytes."""


class VerificationError(DistError):
    """A downloaded or local input does not match its pinned checksum."""

    exit_code = EXIT_VERIFY
