"""Pipelines: specs, datums, triggering, jobs and the scheduler."""
