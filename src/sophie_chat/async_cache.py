"""Calling a Django cache from async code, without blocking the event loop.

Django's cache API is synchronous. A local-memory or dummy cache is an
in-process dict behind a lock, so it is called directly: no thread hop. A
Redis cache (django-redis's ``RedisCache`` with its default client, or
Django's own ``RedisCache``) on one server is spoken to with redis-py's
asyncio client from the event loop, with the cache's own keys, serializer,
compressor and timeouts, so values written either way read the same; the
other methods, and every other cache (Memcached, files, databases), run in a
worker thread. The response cache, the turn lock and the cache rate limiter
all call their caches through :func:`call`.

A thread hop costs little alone, but under load each one waits for the
event loop to let go of the GIL; a turn on the deployment page's settings
made five of them (the turn lease's add, get and delete, the cached answer's
get and set).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django.dispatch import receiver

#: The methods spoken natively to Redis; any other goes to a worker thread.
NATIVE_METHODS = frozenset({"get", "set", "add", "delete"})


async def call(cache: BaseCache, method: str, *args: Any) -> Any:
    """``cache.<method>(*args)``: at once for an in-process cache, over asyncio for Redis,
    else in a worker thread."""
    func = getattr(cache, method)
    if isinstance(cache, LocMemCache | DummyCache):
        return func(*args)
    if method in NATIVE_METHODS:
        native = _native(cache)
        if native is not None:
            return await getattr(native, method)(*args)
    return await sync_to_async(func, thread_sensitive=False)(*args)


async def delete_if(cache: BaseCache, key: str, value: Any) -> bool:
    """Delete ``key`` only while it holds ``value``; whether it did.

    One atomic script on Redis (spoken to natively); elsewhere a ``get`` then a
    ``delete``, which a writer in between could slip past.
    """
    if not isinstance(cache, LocMemCache | DummyCache):
        native = _native(cache)
        if native is not None:
            return await native.delete_if(key, value)
    if await call(cache, "get", key) == value:
        return bool(await call(cache, "delete", key))
    return False


_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class _NativeRedis:
    """One Redis cache's get/set/add/delete over redis-py's asyncio client.

    A client per event loop: redis-py's asyncio connections belong to the loop
    that opened them.
    """

    def __init__(self, cache: BaseCache, url: str, options: dict[str, Any]) -> None:
        self.cache = cache
        self.url = url
        self.options = options
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        # The compare-and-delete script of each client (its SHA is computed once).
        self._scripts: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    # The cache's own encoding, overridden per kind of cache.
    def key(self, key: str) -> str:
        raise NotImplementedError

    def encode(self, value: Any) -> Any:
        raise NotImplementedError

    def decode(self, value: Any) -> Any:
        raise NotImplementedError

    def timeout_ms(self, timeout: Any) -> int | bool | None:
        """Milliseconds to keep a value, None for ever, False: not a plain timeout."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.cache.default_timeout
        if timeout is None:
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            return False
        return max(1, int(timeout * 1000))

    def client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(self.url, **self.options)
            self._clients[loop] = client
        return client

    async def get(self, key: str, default: Any = None) -> Any:
        value = await self.client().get(self.key(key))
        return default if value is None else self.decode(value)

    async def set(self, key: str, value: Any, expiry: Any = DEFAULT_TIMEOUT) -> Any:
        return await self._set(key, value, expiry, nx=False)

    async def add(self, key: str, value: Any, expiry: Any = DEFAULT_TIMEOUT) -> bool:
        return await self._set(key, value, expiry, nx=True)

    async def _set(self, key: str, value: Any, expiry: Any, *, nx: bool) -> Any:
        ms = self.timeout_ms(expiry)
        if ms is False:
            # Zero or negative timeouts have each cache's own meaning: ask the cache.
            method = "add" if nx else "set"
            return await sync_to_async(getattr(self.cache, method), thread_sensitive=False)(
                key, value, expiry
            )
        done = await self.client().set(self.key(key), self.encode(value), px=ms, nx=nx)
        return bool(done) if nx else None

    async def delete(self, key: str) -> bool:
        return bool(await self.client().delete(self.key(key)))

    async def delete_if(self, key: str, value: Any) -> bool:
        # The same encoding as set(): a value stored by either side compares equal.
        encoded = self.encode(value)
        if isinstance(encoded, int):
            encoded = str(encoded).encode()
        client = self.client()
        script = self._scripts.get(client)
        if script is None:
            script = self._scripts[client] = client.register_script(_DELETE_IF)
        return bool(await script(keys=[self.key(key)], args=[encoded]))


class _DjangoRedis(_NativeRedis):
    """django-redis's ``RedisCache`` with its ``DefaultClient``."""

    def key(self, key: str) -> str:
        return str(self.cache.client.make_key(key))

    def encode(self, value: Any) -> Any:
        return self.cache.client.encode(value)

    def decode(self, value: Any) -> Any:
        return self.cache.client.decode(value)


class _DjangoBuiltinRedis(_NativeRedis):
    """Django's own ``django.core.cache.backends.redis.RedisCache``."""

    def key(self, key: str) -> str:
        return self.cache.make_and_validate_key(key)

    def encode(self, value: Any) -> Any:
        return self.cache._cache._serializer.dumps(value)

    def decode(self, value: Any) -> Any:
        return self.cache._cache._serializer.loads(value)

    def timeout_ms(self, timeout: Any) -> int | bool | None:
        seconds = self.cache.get_backend_timeout(timeout)
        if seconds is None:
            return None
        return max(1, int(seconds * 1000)) if seconds > 0 else False


# What each cache configuration gets, by the configuration (Django makes a cache
# object per thread and per async context; they share one client).
_natives: dict[Any, _NativeRedis | None] = {}
_lock = threading.Lock()


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        with _lock:
            _natives.clear()


def _native(cache: BaseCache) -> _NativeRedis | None:
    # Remembered on the cache object too: the identity below (a repr of its
    # options) would otherwise be built again for every call on the hot path.
    try:
        return cache.__dict__[_ATTRIBUTE]
    except KeyError:
        pass
    native = _shared_native(cache)
    cache.__dict__[_ATTRIBUTE] = native
    return native


#: Where a cache object keeps its native client (None: it has none).
_ATTRIBUTE = "_sophie_chat_native"


def _shared_native(cache: BaseCache) -> _NativeRedis | None:
    """The native client of ``cache``'s configuration, shared by its cache objects."""
    identity = (
        type(cache),
        getattr(cache, "_server", None) or getattr(cache, "_servers", None),
        repr(getattr(cache, "_params", None) or getattr(cache, "_options", None)),
        cache.key_prefix,
        cache.version,
        cache.key_func,
    )
    try:
        return _natives[identity]
    except (KeyError, TypeError):
        pass
    native = _make_native(cache)
    try:
        with _lock:
            _natives[identity] = native
    except TypeError:
        pass
    return native


def _make_native(cache: BaseCache) -> _NativeRedis | None:
    """The native client for ``cache``, or None: anything unusual goes to the thread."""
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        return None
    kind = f"{type(cache).__module__}.{type(cache).__qualname__}"
    if kind == "django_redis.cache.RedisCache":
        return _django_redis(cache)
    if kind == "django.core.cache.backends.redis.RedisCache":
        return _builtin_redis(cache)
    return None


# django-redis options the native client honours (the rest change how it
# connects or behaves: sentinels, sharding, other pools or clients).
_DJANGO_REDIS_OPTIONS = {
    "CLIENT_CLASS",
    "SERIALIZER",
    "COMPRESSOR",
    "SOCKET_CONNECT_TIMEOUT",
    "SOCKET_TIMEOUT",
    "PASSWORD",
    "IGNORE_EXCEPTIONS",
    "LOG_IGNORED_EXCEPTIONS",
}


def _django_redis(cache: Any) -> _NativeRedis | None:
    try:
        from django_redis.client import DefaultClient
    except ImportError:
        return None
    client = cache.client
    options = client._options
    if type(client) is not DefaultClient or set(options) - _DJANGO_REDIS_OPTIONS:
        return None
    if len(client._server) != 1 or options.get("IGNORE_EXCEPTIONS"):
        return None
    connect: dict[str, Any] = {}
    if options.get("SOCKET_CONNECT_TIMEOUT") is not None:
        connect["socket_connect_timeout"] = options["SOCKET_CONNECT_TIMEOUT"]
    if options.get("SOCKET_TIMEOUT") is not None:
        connect["socket_timeout"] = options["SOCKET_TIMEOUT"]
    if options.get("PASSWORD"):
        connect["password"] = options["PASSWORD"]
    return _DjangoRedis(cache, client._server[0], connect)


def _builtin_redis(cache: Any) -> _NativeRedis | None:
    options = dict(cache._options)
    if len(cache._servers) != 1 or {"pool_class", "parser_class", "serializer"} & set(options):
        return None
    options.pop("db", None)
    return _DjangoBuiltinRedis(cache, cache._servers[0], options)
