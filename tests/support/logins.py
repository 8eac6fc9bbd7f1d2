"""Logged-in visitors of a chat server process: users and their session cookies."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.processes import ROOT, run_command

_SCRIPT = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore

cookies = {}
permissions = [p for p in sys.argv[1].split(",") if p]
for username in sys.argv[2:]:
    user = get_user_model().objects.create_user(username, password="x", first_name=username)
    for codename in permissions:
        from django.contrib.auth.models import Permission
        user.user_permissions.add(Permission.objects.get(codename=codename))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    cookies[username] = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
print(json.dumps(cookies))
"""


def create_logins(
    env: Mapping[str, str],
    *usernames: str,
    permissions: tuple[str, ...] = (),
    cwd: Path = ROOT,
) -> dict[str, str]:
    """Create users (password ``"x"``, first name = username) in the database of the
    settings in ``env``, each logged in and given ``permissions`` (codenames, e.g.
    ``"handle_conversation"``); their ``Cookie`` header values by username. ``cwd``:
    where the settings' project is (the demo's folder for the demo's settings)."""
    argv = [sys.executable, "-c", _SCRIPT, ",".join(permissions), *usernames]
    output = run_command(argv, env=env, cwd=cwd)
    return json.loads(output.strip().splitlines()[-1])
