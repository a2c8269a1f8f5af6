"""Designate backend plugins that know about several regions (pdns4_dr, bind9_dr)."""
