"""Serving a stored batch document over HTTP: streamed from storage, with ``ETag``, ``Range`` and a useful name.

Shared by the API and the admin so both answer the same way:

- ``200`` with the whole file, streamed in blocks (memory does not grow with the document);
  ``Content-Type`` of the format, ``Content-Length``, ``Accept-Ranges: bytes``, ``ETag`` (the file's SHA-256,
  quoted), ``Cache-Control: private, no-cache`` (revalidate: a rebuilt document has another ETag), and
  ``Content-Disposition: attachment; filename="labels-<shop>-<date>-<batch>-<format>-by-<sort>.<ext>"``
  (Django's ``content_disposition_header``: a quote in the name is escaped, a name that is not ASCII is
  sent as RFC 6266's ``filename*=utf-8''…``).
- ``304`` for ``If-None-Match`` naming the current ETag.
- ``206`` with ``Content-Range`` for one byte range (``Range: bytes=a-b``, ``a-`` or ``-n``), so an
  interrupted download of a large document resumes; ``If-Range`` with another ETag gets the whole file.
  Several ranges in one request are answered with the whole file (RFC 9110 allows ignoring ``Range``).
- ``416`` with ``Content-Range: bytes */<size>`` for a range that starts past the end.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import BinaryIO, Final, cast

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header

from sendcloud_integration.models import BatchDocument
from sendcloud_integration.printing.documents import build_again
from sendcloud_integration.printing.profiles import DocumentSpec

logger = logging.getLogger(__name__)

#: Bytes read from storage per block of the response.
BLOCK: Final = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def document_filename(document: BatchDocument, spec: DocumentSpec) -> str:
    """``labels-<shop slug>-<YYYYMMDD>-<first 8 of the batch id>-<variant>-by-<sort>.<ext>``."""
    batch = document.batch
    return (
        f"labels-{batch.shop.slug}-{batch.created_at:%Y%m%d}-{str(batch.pk)[:8]}-"
        f"{spec.variant}-by-{spec.sort}.{spec.extension}"
    )


def document_response(request: HttpRequest, document: BatchDocument, spec: DocumentSpec) -> HttpResponseBase | None:
    """The stored document as the module docstring describes; None when its file is gone from storage.

    A lost file is not the caller's problem: the document is built again (``documents.build_again``) and
    the caller answers as for any document being built.
    """
    etag = f'"{document.checksum}"'
    size = document.size
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
    }
    if _matches(request.headers.get("If-None-Match"), etag):
        return HttpResponse(status=304, headers=headers)
    headers["Content-Disposition"] = content_disposition_header(True, document_filename(document, spec)) or ""
    start, end = 0, size - 1
    status = 200
    wanted = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if wanted and (if_range is None or if_range.strip() == etag):
        try:
            parsed = _parse_range(wanted, size)
        except _Unsatisfiable:
            return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        if parsed is not None:
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    try:
        handle = cast(BinaryIO, document.file.storage.open(document.file.name, "rb"))
    except OSError:
        logger.warning("batch document=%s: its stored file is gone; building it again", document.pk)
        build_again(document=document)
        return None
    response = StreamingHttpResponse(
        _blocks(handle, start, end - start + 1), status=status, content_type=spec.media_type, headers=headers
    )
    response["Content-Length"] = str(end - start + 1)
    return response


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or etag in [part.strip().removeprefix("W/") for part in header.split(",")]


class _Unsatisfiable(Exception):
    pass


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of one range, or None to ignore it (malformed, or several); raises ``_Unsatisfiable``."""
    found = _RANGE.match(header.strip())
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last n bytes
        length = int(last)
        if length == 0:
            raise _Unsatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    if start >= size:
        raise _Unsatisfiable
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None
    return start, end


def _blocks(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes from ``start``, a block at a time; the file is closed when the response is (or ends)."""
    try:
        handle.seek(start)
        left = length
        while left > 0:
            block = handle.read(min(BLOCK, left))
            if not block:
                break
            left -= len(block)
            yield block
    finally:
        handle.close()
