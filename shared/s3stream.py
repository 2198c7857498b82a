"""Reading and writing S3 objects as streams, with memory bounded by a few buffers whatever their size.

``S3ObjectReader`` is a seekable, read-only file over one version of an object (pinned by its ETag, so an
object replaced mid-read fails instead of mixing two versions). Sequential reads are served by one streaming
GET; a seek elsewhere opens another there; the object's last ``TAIL_BYTES`` (a zip's central directory, a
Parquet footer) are fetched once and kept. It hashes the object in passing, as long as reads advance
contiguously, and ``digest()`` reads only what was skipped to finish the hash.

``S3ObjectWriter`` uploads bytes as they are written: parts of ``PART_BYTES`` go up from a background
thread while the next part fills, so at most three parts are held. Nothing is visible until ``commit()``;
``abort()`` (or a crash) leaves nothing behind but an incomplete multipart upload, which S3 never shows and
the bucket's lifecycle rule removes.
"""

from __future__ import annotations

import errno
import io
import logging
import queue
import threading
from typing import Any

from botocore.exceptions import ClientError

from shared.aws import is_missing
from shared.manifest import CHUNK_BYTES, StreamDigest

logger = logging.getLogger(__name__)

TAIL_BYTES = 1 << 20
PART_BYTES = 16 << 20
"""The size of an upload part (S3's minimum is 5 MiB); grown for objects that would need more parts."""
MAX_PARTS = 10_000
STREAM_RETRIES = 3


class ObjectChanged(RuntimeError):
    """The object was replaced (or deleted) while it was being read; a retry reads the new version."""


class S3ObjectReader(io.RawIOBase):
    """One S3 object version as a seekable binary file, fetched with ranged GETs and hashed in passing."""

    def __init__(self, s3: Any, bucket: str, key: str, *, etag: str, size: int):
        super().__init__()
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.etag = etag
        self.size = size
        self.requests = 0
        self._position = 0
        self._stream: Any = None
        self._stream_position = -1
        self._tail_start = max(0, size - TAIL_BYTES)
        self._tail: bytes | None = None
        self._digest = StreamDigest()

    @classmethod
    def open(cls, s3: Any, bucket: str, key: str) -> S3ObjectReader:
        """The object's current version, its tail fetched at once (one request tells size and ETag too);
        ``ClientError`` (``shared.aws.is_missing``) when there is no such object."""
        try:
            answer = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{TAIL_BYTES}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidRange":
                raise
            answer = s3.get_object(Bucket=bucket, Key=key)  # an empty object has no range to ask for
        tail = answer["Body"].read()
        content_range = answer.get("ContentRange")
        size = int(content_range.rsplit("/", 1)[1]) if content_range else len(tail)
        reader = cls(s3, bucket, key, etag=answer["ETag"], size=size)
        reader._tail_start = size - len(tail)
        reader._tail = tail
        reader.requests = 1
        return reader

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            # OSError, as a file answers (EINVAL): zipfile probes before the start of a small object and
            # takes OSError as "not there", which for a valid empty zip is right.
            raise OSError(errno.EINVAL, f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.size - self._position)
        if wanted <= 0:
            return 0
        if self._position >= self._tail_start and self._stream_position != self._position:
            data = self._tail_bytes()[self._position - self._tail_start :][:wanted]
        else:
            data = self._stream_read(wanted)
        view[: len(data)] = data
        if self._digest.bytes == self._position:  # contiguous with what was hashed so far
            self._digest.update(data)
        self._position += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative), short only at the end of the object."""
        if size is None or size < 0:
            size = self.size - self._position
        parts = []
        while size > 0 and (chunk := super().read(min(size, CHUNK_BYTES * 8))):
            parts.append(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def digest(self) -> StreamDigest:
        """The whole object's sha256 and size: bytes already read in order are not fetched again."""
        hashed = self._digest.bytes
        if hashed < self.size:
            position = self._position
            self.seek(hashed)
            while self.read(CHUNK_BYTES * 8):
                pass
            self.seek(position)
        return self._digest

    def close(self) -> None:
        self._close_stream()
        super().close()

    def _tail_bytes(self) -> bytes:
        if self._tail is None:
            self._tail = self._get(f"bytes={self._tail_start}-{self.size - 1}").read()
        return self._tail

    def _stream_read(self, wanted: int) -> bytes:
        for attempt in range(STREAM_RETRIES):
            if self._stream is None or self._stream_position != self._position:
                self._close_stream()
                self._stream = self._get(f"bytes={self._position}-")
                self._stream_position = self._position
            try:
                data = self._stream.read(wanted)
            except Exception as exc:  # a broken connection: reopen where it stopped (same version)
                if attempt == STREAM_RETRIES - 1:
                    raise
                logger.warning("reading %s broke at byte %d (%s); reopening", self.uri, self._position, exc)
                self._close_stream()
                continue
            if not data:
                raise ObjectChanged(f"{self.uri} ended at byte {self._position} of {self.size}")
            self._stream_position += len(data)
            return data
        raise AssertionError("unreachable")

    def _get(self, byte_range: str) -> Any:
        self.requests += 1
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=byte_range, IfMatch=self.etag)[
                "Body"
            ]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412") or is_missing(exc):
                raise ObjectChanged(f"{self.uri} changed while it was read ({code})") from exc
            raise

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
            self._stream_position = -1


def part_bytes_for(expected_bytes: int | None) -> int:
    """The part size that fits an object of ``expected_bytes`` into S3's 10,000 parts."""
    if not expected_bytes:
        return PART_BYTES
    return max(PART_BYTES, -(-expected_bytes // (MAX_PARTS - 1)))


class S3ObjectWriter:
    """An object written as a stream: in parts from a background thread, visible only after ``commit()``."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        content_type: str | None = None,
        expected_bytes: int | None = None,
    ):
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.bytes = 0
        self._extra = {"ContentType": content_type} if content_type else {}
        self._part_bytes = part_bytes_for(expected_bytes)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._part_count = 0
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._closed = False

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def write(self, data: bytes | memoryview) -> int:
        if self._failure is not None:
            raise self._failure
        self._buffer += data
        self.bytes += len(data)
        while len(self._buffer) >= self._part_bytes:
            part = bytes(memoryview(self._buffer)[: self._part_bytes])
            del self._buffer[: self._part_bytes]
            self._send(part)
        return len(data)

    def commit(self) -> str:
        """Make the object visible (complete the upload); its ETag."""
        if self._closed:
            raise RuntimeError(f"{self.uri} was already committed or aborted")
        self._closed = True
        if self._upload_id is None:  # it fit in one part: one PUT
            answer = self.s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), **self._extra
            )
            self._buffer = bytearray()
            return answer["ETag"]
        if self._buffer:
            self._send(bytes(self._buffer))
            self._buffer = bytearray()
        self._finish_thread()
        if self._failure is not None:
            self._abort_upload()
            raise self._failure
        answer = self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": sorted(self._parts, key=lambda part: part["PartNumber"])},
        )
        return answer["ETag"]

    def abort(self) -> None:
        """Drop everything written; nothing becomes visible. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._buffer = bytearray()
        self._finish_thread()
        self._abort_upload()

    def _send(self, part: bytes) -> None:
        if self._upload_id is None:
            answer = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self._extra)
            self._upload_id = answer["UploadId"]
            self._thread = threading.Thread(target=self._upload_parts, name=f"upload {self.key}", daemon=True)
            self._thread.start()
        self._part_count += 1
        self._put((self._part_count, part))

    def _put(self, item: tuple[int, bytes] | None) -> None:
        while True:
            if self._failure is not None and item is not None:
                raise self._failure
            try:
                self._queue.put(item, timeout=1)
                return
            except queue.Full:
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError(f"the upload of {self.uri} stopped") from self._failure

    def _upload_parts(self) -> None:
        while (item := self._queue.get()) is not None:
            number, body = item
            if self._failure is not None:
                continue
            try:
                answer = self.s3.upload_part(
                    Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
                )
                self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            except BaseException as exc:  # handed to the writing thread, which raises it
                self._failure = exc

    def _finish_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._put(None)
            self._thread.join()

    def _abort_upload(self) -> None:
        if self._upload_id is not None:
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            except ClientError as exc:  # the lifecycle rule removes it in any case
                logger.warning("could not abort the upload of %s: %s", self.uri, exc)
            self._upload_id = None
