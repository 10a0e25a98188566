"""Serving an app: gunicorn's workers (the app loaded once, before the fork), the start-up
log on stderr, and whether an address faces the network."""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from flask import Flask

from .errors import ConfigurationError
from .extension import state_of


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may well face the network


def log_to_stderr() -> None:
    """Show tablerest's start-up lines (hidden columns, ...) unless logging is set up."""
    logger = logging.getLogger("tablerest")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tablerest: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def run_gunicorn(load: Callable[[], Flask], options: dict[str, Any]) -> None:
    """Gunicorn with ``options``. The app is loaded once in the master and shared by the
    forked workers; with ``reload`` each worker loads it, so that a restart sees new code."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    preloaded = None if options["reload"] else load()

    def post_fork(_server: Any, _worker: Any) -> None:
        # Connections opened while loading the app belong to the master; a worker opens its own.
        if preloaded is not None:
            with suppress(ConfigurationError):  # an app without tablerest has no engine of ours
                state = state_of(preloaded)
                state.engine.dispose(close=False)
                if state.replicas is not None:
                    state.replicas.dispose(close=False)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {**options, "post_fork": post_fork}.items():
                self.cfg.set(key, value)
            # Gunicorn 27's control socket is one path per user: two servers would share it.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Flask:
            return preloaded if preloaded is not None else load()

    Server().run()
