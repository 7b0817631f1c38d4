"""Whole-deployment operations: cluster id, delete-all, garbage collection, extract and restore."""
