"""What a source is, and the registry of the sources an extract can name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pyarrow as pa

from services.extractor.exceptions import SourcesFileError, UnknownSource
from services.extractor.sources.config import BaseSource, HttpSourceConfig, SqlSourceConfig, load_sources_file
from shared.logs import log_event

if TYPE_CHECKING:
    from services.extractor.settings import ExtractorSettings

logger = logging.getLogger(__name__)


@runtime_checkable
class Source(Protocol):
    """Where an extract reads movies from: a database table or query, an HTTP API.

    ``config`` says how its fields map to the movie record and which column is its cursor; the
    extractor does the mapping and typing (``services.extractor.records``), so a source only reads.
    """

    name: str
    config: BaseSource

    def read_batches(self, batch_rows: int, since: str | None = None) -> Iterator[pa.RecordBatch]:
        """The rows, ``batch_rows`` at most at a time, in the source's own field names.

        With ``since`` (the high-water mark of an incremental source), only rows whose cursor is at or
        above it. Raises ``SourceUnreadable`` when the source cannot be read.
        """
        ...


SourceFactory = Callable[["ExtractorSettings"], Source]
"""Builds a source from the settings (where its database lives, its credentials, ...)."""


def source_from_config(config: SqlSourceConfig | HttpSourceConfig) -> SourceFactory:
    """How to build the source a sources-file entry declares."""
    if isinstance(config, HttpSourceConfig):
        from services.extractor.sources.http import HttpSource

        return lambda settings: HttpSource(config)
    from services.extractor.sources.sql import SqlSource

    return lambda settings: SqlSource(config)


class SourceRegistry:
    """Source names, as requests name them, mapped to how to build each source."""

    def __init__(
        self,
        factories: Mapping[str, SourceFactory] | None = None,
        configs: Mapping[str, BaseSource] | None = None,
    ):
        self._factories: dict[str, SourceFactory] = dict(factories or {})
        self._configs: dict[str, BaseSource] = dict(configs or {})

    @classmethod
    def from_configs(cls, configs: Mapping[str, SqlSourceConfig | HttpSourceConfig]) -> SourceRegistry:
        return cls({name: source_from_config(config) for name, config in configs.items()}, configs)

    def register(self, name: str, factory: SourceFactory, config: BaseSource | None = None) -> None:
        self._factories[name] = factory
        if config is not None:
            self._configs[name] = config

    @property
    def names(self) -> list[str]:
        return sorted(self._factories)

    def config(self, name: str) -> BaseSource | None:
        """The declaration of a source from the sources file; None for one registered in code."""
        return self._configs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def get(self, name: str, settings: ExtractorSettings) -> Source:
        """The source called ``name``; ``UnknownSource`` (naming the known ones) if there is none."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise UnknownSource(name, self.names) from None
        return factory(settings)


class FileSourceRegistry(SourceRegistry):
    """The sources declared in a sources file, read again whenever the file changes.

    A bad file is refused when the registry is made (the service does not start); a file that turns
    bad later is logged and the sources as last read stay in use, so a typo never stops extracts.
    """

    def __init__(self, path: Path):
        self.path = path
        self.problem: str | None = None
        """Why the file as it is now was refused (the sources as last read are in use), if it was."""
        self._refreshing = threading.Lock()
        self._stamp = self._file_stamp()
        super().__init__()
        self._load(load_sources_file(path))

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _load(self, configs: Mapping[str, SqlSourceConfig | HttpSourceConfig]) -> None:
        self._factories = {name: source_from_config(config) for name, config in configs.items()}
        self._configs = dict(configs)

    def refresh(self) -> None:
        """Read the file again if it changed since it was last read.

        Requests arrive on many threads at once: one reads the file while the others wait for it, so
        none sees the sources as they were once the file has changed (a source just declared is found).
        """
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        with self._refreshing:
            if stamp == self._stamp:
                return
            try:
                configs = load_sources_file(self.path)
            except SourcesFileError as exc:
                self.problem = exc.message
                self._stamp = stamp
                log_event(logger, "sources_file_refused", exc.message, level=logging.ERROR)
                return
            self._load(configs)
            self._stamp = stamp
            self.problem = None
        log_event(logger, "sources_file_read", f"read {len(self._factories)} source(s) from {self.path}")

    @property
    def names(self) -> list[str]:
        self.refresh()
        return super().names

    def config(self, name: str) -> BaseSource | None:
        self.refresh()
        return super().config(name)

    def __contains__(self, name: object) -> bool:
        self.refresh()
        return super().__contains__(name)

    def get(self, name: str, settings: ExtractorSettings) -> Source:
        self.refresh()
        return super().get(name, settings)
