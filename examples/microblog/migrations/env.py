"""Alembic's environment for this app: tablerest supplies the connection and the models."""

from tablerest.migrations import run_env

run_env()
