"""Errors of the DR operations; they belong to designate-dist's one hierarchy."""
from __future__ import annotations

from designate_dist.errors import ConfigError, DistError


class PoolsError(ConfigError):
    """pools.yaml is missing, malformed, or cannot be mapped to regions."""


class UnknownRegion(ConfigError):
    """A region named on the command line is not in pools.yaml (or its backup)."""


class Unreachable(DistError):
    """A server the operation needs did not answer; nothing was changed."""


class DRFailed(DistError):
    """Part of a failover or failback failed after pools.yaml was written; running it again resumes."""


class APIError(DistError):
    """The Designate API refused or failed a request."""
