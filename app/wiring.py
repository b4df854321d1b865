"""How the domains plug into each other, in one place: every entry point (the app, the
command line, the demo) builds its hooks here."""

from __future__ import annotations

from app.autopay import hooks as autopay_hooks
from app.core.hooks import Hooks


def build_hooks() -> Hooks:
    hooks = Hooks()
    autopay_hooks.register(hooks)
    return hooks
