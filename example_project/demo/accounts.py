"""The demo's two accounts, and how sophie-chat tells a client from a provider.

The accounts are created by the ``0001_demo_users`` migration, so
``manage.py migrate`` (and ``make demo``) is all it takes; the login page
shows their usernames and the password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROVIDERS_GROUP = "providers"
DEMO_PASSWORD = "casapronta"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    first_name: str
    last_name: str
    #: "client", "provider", or "agent" (takes conversations over in chat/inbox/).
    user_type: str


DEMO_ACCOUNTS = (
    DemoAccount("ana", "Ana", "Souza", "client"),
    DemoAccount("carlos", "Carlos", "Lima", "provider"),
    DemoAccount("bia", "Bia", "Rocha", "agent"),
)
#: The group whose members may use the inbox (``sophie_chat.handle_conversation``).
SUPPORT_GROUP = "support"


def user_type(user: Any) -> str:
    """``SOPHIE_CHAT["USER_TYPE_RESOLVER"]``: providers are the members of one group."""
    if user is None or not user.is_authenticated:
        return "anonymous"
    if user.groups.filter(name=PROVIDERS_GROUP).exists():
        return "provider"
    return "client"
