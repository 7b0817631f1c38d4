"""Object stores the CLI reads and writes with the credentials of the user running it, never
the server's: ``s3://`` (boto3), ``gs://`` / ``gcs://`` (google-cloud-storage) and ``as://`` /
``wasb://`` (azure-storage-blob). ``put-file -f``, ``extract -u`` and ``restore -u`` go through
the one small interface here, ``Remote``: size, list a prefix, read and write an object. Each
library is imported only when a URL of its store is used, so the default install stays light."""

from __future__ import annotations

import contextlib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar
from urllib.parse import urlparse

from tusk.errors import InvalidArgument, SourceUnavailable

BLOCK = 1 << 20
PART = 8 << 20  # what a write uploads at a time (S3's parts are at least 5 MiB, the last excepted)
# scheme -> the module (in this package) and the pip extra of its store
SCHEMES = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "as": "azure", "wasb": "azure"}
LIBRARIES = {"s3": "boto3", "gcs": "google-cloud-storage", "azure": "azure-storage-blob"}

Reader = Callable[[], Iterator[bytes]]


class Remote(ABC):
    """One bucket (an Azure container) of an object store, reached with the CLI user's
    credentials. Subclasses talk to their library; every library error they let through is
    turned into a ``SourceUnavailable`` naming the URL by ``explain``."""

    example: ClassVar[str]  # how a URL of this store is written, for hints

    def __init__(self, url: str) -> None:
        self.url = url
        self.bucket, self.key = self.parse(url)

    @classmethod
    def parse(cls, url: str) -> tuple[str, str]:
        """``(bucket, key)`` of ``scheme://bucket/key``."""
        parsed = urlparse(url)
        if not parsed.netloc:
            raise InvalidArgument(
                f"invalid URL {url}: no bucket", hint=f"write it as {cls.example}"
            )
        return parsed.netloc, parsed.path.lstrip("/")

    def url_of(self, key: str) -> str:
        """The URL of object ``key`` in this bucket, written as the user wrote the bucket's."""
        base = self.url[: len(self.url) - len(self.key)] if self.key else self.url
        return base.rstrip("/") + "/" + key

    @abstractmethod
    def connect(self) -> None:
        """Make the library's client (credentials are looked up here)."""

    @abstractmethod
    def errors(self) -> tuple[type[Exception], ...]:
        """The library's exception classes, to be explained by ``explain``."""

    @abstractmethod
    def explain(self, exc: Exception) -> tuple[str, str]:
        """``(what went wrong, what to check)`` for one of the library's errors."""

    @abstractmethod
    def size(self, key: str) -> int:
        """The size of object ``key`` (the library's not-found error if there is none)."""

    @abstractmethod
    def listing(self, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every object whose key starts with ``prefix``."""

    @abstractmethod
    def read(self, key: str) -> Iterator[bytes]:
        """Object ``key``'s bytes in blocks of at most ``BLOCK``."""

    @abstractmethod
    def write(self, key: str, blocks: Iterable[bytes]) -> None:
        """Store ``blocks`` as object ``key`` whole, or leave no object behind."""

    def failure(self, url: str, exc: Exception, verb: str) -> SourceUnavailable:
        what, check = self.explain(exc)
        nothing = "nothing was stored" if verb == "get" else "nothing was written"
        return SourceUnavailable(f"cannot {verb} {url}: {what}", hint=f"{check}; {nothing}")

    @contextlib.contextmanager
    def explained(self, url: str, verb: str = "get") -> Iterator[None]:
        """Turn the library's errors inside the block into a user error naming ``url``."""
        try:
            yield
        except self.errors() as exc:
            raise self.failure(url, exc, verb) from None


def is_remote(url: str) -> bool:
    """Whether ``url`` names an object store the CLI reads (``s3://``, ``gs://``, …)."""
    return urlparse(url).scheme in SCHEMES


def open_remote(url: str, verb: str = "get") -> Remote:
    """The bucket ``url`` names, connected with the CLI user's credentials."""
    remote = _store_class(url)(url)
    with remote.explained(url, verb):
        remote.connect()
    return remote


def _store_class(url: str) -> type[Remote]:
    scheme = urlparse(url).scheme
    extra = SCHEMES.get(scheme)
    if extra is None:
        raise InvalidArgument(
            f"{url} is not an object-store URL",
            hint="write s3://bucket/key, gs://bucket/key or wasb://account/container/blob",
        )
    try:
        module = importlib.import_module(f"{__name__}.{extra}")
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("tusk"):
            raise
        raise SourceUnavailable(
            f"{scheme}:// URLs need {LIBRARIES[extra]}, which is not installed",
            hint=f"install it with: pip install 'tusk[{extra}]'",
        ) from None
    store: type[Remote] = module.STORE
    return store


def parts(blocks: Iterable[bytes], size: int = PART) -> Iterator[bytes]:
    """The stream regrouped into parts of ``size`` bytes (the last one shorter)."""
    buf = bytearray()
    for block in blocks:
        buf += block
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _reader(remote: Remote, key: str) -> Reader:
    url = remote.url_of(key)

    def read() -> Iterator[bytes]:
        with remote.explained(url):
            yield from remote.read(key)

    return read


def objects(url: str, recursive: bool) -> Iterator[tuple[str, Reader, int]]:
    """``(relative path, reader, size)`` of the object at ``url`` (relative path ``""``), or with
    ``recursive`` of every object under the prefix (paths relative to it). Looked up now, so a
    missing object fails before anything is sent."""
    remote = open_remote(url)
    key = remote.key
    with remote.explained(url):
        if not recursive:
            object_key(url, key, "use -r to put every object under it")
            yield "", _reader(remote, key), remote.size(key)
            return
        found = False
        for name, size in remote.listing(key):
            if name.endswith("/"):
                continue  # a "directory" marker object
            found = True
            yield name[len(key) :], _reader(remote, name), size
        if not found:
            raise SourceUnavailable(
                f"no objects found under {url}", hint="check the bucket and prefix"
            )


def object_key(url: str, key: str, hint: str) -> str:
    """``key``, which must name one object of ``url`` (not a bucket or a prefix)."""
    if not key or key.endswith("/"):
        raise InvalidArgument(f"{url} names a bucket or a prefix, not an object", hint=hint)
    return key


def read_object(url: str) -> Iterator[bytes]:
    """The object at ``url`` in blocks; a missing object fails before the first block."""
    remote = open_remote(url)
    key = object_key(url, remote.key, f"e.g. {remote.example}")
    with remote.explained(url):
        remote.size(key)
    return _reader(remote, key)()


def write_object(url: str, blocks: Iterable[bytes]) -> None:
    """Write ``blocks`` to the object at ``url`` whole, or not at all."""
    remote = open_remote(url, "write")
    key = object_key(url, remote.key, f"e.g. {remote.example}")
    with remote.explained(url, "write"):
        remote.write(key, blocks)


def check_object_url(url: str) -> None:
    """Raise for an object-store URL that cannot name one object (nothing is contacted)."""
    store = _store_class(url)
    object_key(url, store.parse(url)[1], f"e.g. {store.example}")
