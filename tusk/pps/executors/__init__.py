"""Where datums run: the executor interface (base), worker processes on this machine (local) and
named actors on a Ray cluster (ray)."""
