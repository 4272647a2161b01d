"""Shared test machinery for pipeline tests: a real HTTP sink, `sluice up` subprocesses, Postgres helpers."""
