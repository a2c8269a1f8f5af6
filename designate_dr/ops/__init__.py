"""Disaster-recovery operations across Designate regions: check, failover, failback.

``pools`` reads and rewrites Designate's pools.yaml with regions, ``soa`` asks
many nameservers for many SOA serials at once, ``check`` is the sync monitor,
``failover`` moves a pool off a lost region and back.  The command line is
``designate-dr`` (:mod:`designate_dr.cli`; also ``designate-dist dr``).
"""
