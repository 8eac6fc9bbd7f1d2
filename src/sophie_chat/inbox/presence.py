"""Who is working in the inbox: online while an inbox tab is open, away after idling.

Kept in the default cache (shared by every process when it is Redis), one
entry per agent holding the agent's open tabs: each tab's state (``online``
or ``away``, the page reports idling after ``HANDOFF["AGENT_IDLE"]``) and
when it was last heard of. A tab not heard of for :data:`TAB_TTL_SECONDS`
(its process died without saying goodbye) no longer counts. An agent is
``online`` when any tab is, ``away`` when tabs are open but all idle, and
``offline`` otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.core.cache import cache

from sophie_chat import async_cache

ONLINE, AWAY, OFFLINE = "online", "away", "offline"
#: The page pings every 25 seconds; a tab silent for longer than this is gone.
TAB_TTL_SECONDS = 75
_KEY = "sophie_chat:inbox:presence:{}"


def _key(agent_id: int) -> str:
    return _KEY.format(agent_id)


def _fresh(tabs: dict[str, list], now: float) -> dict[str, list]:
    return {tab: entry for tab, entry in tabs.items() if now - entry[1] < TAB_TTL_SECONDS}


def state_of(tabs: dict[str, list] | None, now: float | None = None) -> str:
    live = _fresh(tabs or {}, now or time.time())
    if not live:
        return OFFLINE
    return ONLINE if any(state == ONLINE for state, _seen in live.values()) else AWAY


async def set_tab(agent_id: int, tab: str, state: str | None) -> str:
    """Record ``tab``'s state (None: the tab closed); the agent's state afterwards."""
    now = time.time()
    key = _key(agent_id)
    # Read-modify-write: two tabs of one agent changing at the same instant is
    # the only race, and the next ping repairs it.
    tabs = _fresh(await async_cache.call(cache, "get", key) or {}, now)
    if state is None:
        tabs.pop(tab, None)
    else:
        tabs[tab] = [state, now]
    if tabs:
        await async_cache.call(cache, "set", key, tabs, TAB_TTL_SECONDS * 2)
    else:
        await async_cache.call(cache, "delete", key)
    return state_of(tabs, now)


async def states(agent_ids: Iterable[int]) -> dict[int, str]:
    """Each agent's state, ``offline`` for those without an open tab."""
    ids = list(agent_ids)
    found = await async_cache.call(cache, "get_many", [_key(i) for i in ids])
    now = time.time()
    return {i: state_of(found.get(_key(i)), now) for i in ids}


async def anyone_online() -> bool:
    """Whether an agent has an inbox tab open and is not idle (known agents only)."""
    from sophie_chat.inbox import data

    return ONLINE in (await states(await data.agent_ids())).values()
