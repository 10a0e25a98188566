"""The ``tablerest`` console command: a thin shell over importable functions."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="tablerest")
def main() -> None:
    """tablerest: a REST/JSON API for a relational database."""
