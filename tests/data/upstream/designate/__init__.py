"""A tiny stand-in for Designate."""
