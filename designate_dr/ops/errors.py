"""The one error hierarchy of the DR operations (``designate-dr``).

Every error raised on purpose derives from :class:`DRError` and carries the exit code
the command returns for it; the CLI catches the base class once and prints
``error: <message> (<hint>)``.  Nothing here imports the build tool: the DR operations
run in Designate's own virtualenv.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PENDING = 3  # --dry-run --detailed-exitcode: a real run would change something


class DRError(Exception):
    """Base of every DR error; ``exit_code`` is what the command returns."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(DRError):
    """Bad command line usage."""

    exit_code = EXIT_USAGE


class PoolsError(DRError):
    """pools.yaml (or another input file) is missing, malformed, or cannot be mapped to regions."""


class UnknownRegion(PoolsError):
    """A region named on the command line is not in pools.yaml (or its backup)."""


class Unreachable(DRError):
    """A server the operation needs did not answer; nothing was changed."""


class DRFailed(DRError):
    """Part of a failover or failback failed after pools.yaml was written; running it again resumes."""


class APIError(DRError):
    """The Designate API refused or failed a request."""
