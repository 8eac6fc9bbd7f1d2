"""Logged-in visitors of a chat server process: users and their session cookies."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

from tests.support.processes import run_command

_SCRIPT = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore

cookies = {}
for username in sys.argv[1:]:
    user = get_user_model().objects.create_user(username, password="x", first_name=username)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    cookies[username] = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
print(json.dumps(cookies))
"""


def create_logins(env: Mapping[str, str], *usernames: str) -> dict[str, str]:
    """Create users (password ``"x"``, first name = username) in the database of the
    settings in ``env``, each logged in; their ``Cookie`` header values by username."""
    output = run_command([sys.executable, "-c", _SCRIPT, *usernames], env=env)
    return json.loads(output.strip().splitlines()[-1])
