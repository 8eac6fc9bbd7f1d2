"""The inbox's check (sophie_chat.W028): agents' presence needs a cache every process shares."""

from __future__ import annotations

from tests.support.checks import BASE, ids
from tests.support.handoff import handoff_settings

REDIS_LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
LOCAL = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SHARED = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "c"}}


def inbox_ids(*, enabled=True, layer=REDIS_LAYER, caches=LOCAL) -> list[str]:
    config = {**BASE, "HANDOFF": handoff_settings(ENABLED=enabled)}
    found = ids(DEBUG=True, CHANNEL_LAYERS=layer, CACHES=caches, SOPHIE_CHAT=config)
    return [i for i in found if i == "sophie_chat.W028"]


def test_w028_presence_in_a_per_process_cache_while_several_processes_serve():
    assert inbox_ids() == ["sophie_chat.W028"]


def test_a_shared_cache_one_process_or_no_handoff_pass():
    assert inbox_ids(caches=SHARED) == []
    assert inbox_ids(layer={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}) == []
    assert inbox_ids(enabled=False) == []
