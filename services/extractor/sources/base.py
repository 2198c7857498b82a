"""What a source is, and the registry of the sources an extract can name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pyarrow as pa

from services.extractor.exceptions import UnknownSource

if TYPE_CHECKING:
    from services.extractor.settings import ExtractorSettings


@runtime_checkable
class Source(Protocol):
    """Where an extract reads movies from: a database, an HTTP API, an incremental cursor, ..."""

    name: str

    def read_batches(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The movies, ``batch_rows`` at most at a time, as record batches of ``arrow_schema()``.

        Raises ``SourceUnreadable`` when the source cannot be read.
        """
        ...


SourceFactory = Callable[["ExtractorSettings"], Source]
"""Builds a source from the settings (where its database lives, its credentials, ...)."""


class SourceRegistry:
    """Source names, as requests name them, mapped to how to build each source."""

    def __init__(self, factories: Mapping[str, SourceFactory] | None = None):
        self._factories: dict[str, SourceFactory] = dict(factories or {})

    def register(self, name: str, factory: SourceFactory) -> None:
        self._factories[name] = factory

    @property
    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def get(self, name: str, settings: ExtractorSettings) -> Source:
        """The source called ``name``; ``UnknownSource`` (naming the known ones) if there is none."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise UnknownSource(name, self.names) from None
        return factory(settings)
