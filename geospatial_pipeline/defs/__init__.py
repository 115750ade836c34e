"""Dagster shells around core/ and lake/: assets, checks, resources, sensors, schedules."""
