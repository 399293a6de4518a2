"""Writing a PDF page by page: many label PDFs concatenated without holding the document in memory.

pypdf's ``PdfWriter`` keeps every page it was given until ``write`` serialises the document, so merging
10,000 labels holds 10,000 pages' objects at once (a measured 74 MiB for 300 labels). A PDF does not need
that: objects may be written in any order, and only the cross-reference table (one offset per object)
and the page tree (one reference per page) have to wait for the end. So :class:`StreamingPdfWriter`
reads one source at a time with pypdf's ``PdfReader``, renumbers the objects its pages reach, writes them
out with pypdf's own serialisation, and forgets the source. What stays in memory is an integer per
object and per page: some 100 bytes per label.

Each source's objects are copied once, however many of its pages use them (a label's font); two
sources never share objects (a font is repeated per label, as in any merge of separate files). The
inheritable page attributes (``/Resources``, ``/MediaBox``, ``/CropBox``, ``/Rotate``) are already
resolved onto each page by pypdf, so nothing is lost when a page leaves its source's page tree.
"""

from __future__ import annotations

import io
from collections import deque
from typing import BinaryIO

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, NullObject, PdfObject

_CATALOG = 1
_PAGES = 2


class StreamingPdfWriter:
    """Append the pages of PDFs to ``output`` one source at a time; :meth:`close` writes the page tree and xref.

    ``output`` needs only ``write``: the writer counts the bytes itself, so a hashing or network stream works.
    """

    def __init__(self, output: BinaryIO) -> None:
        self._output = output
        self._position = 0
        self._offsets: list[int] = [0, 0, 0]  # index = object number; 1 and 2 are written by close()
        self._kids: list[int] = []
        self._closed = False
        self._write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")

    @property
    def page_count(self) -> int:
        return len(self._kids)

    def append(self, source: BinaryIO | bytes) -> int:
        """Copy every page of the PDF ``source`` (an open binary file or bytes); returns its page count.

        Raises pypdf's errors for a file that is not a readable PDF, before anything of it is written
        only as far as pypdf reads lazily: callers treat any error as "this document cannot be made".
        """
        if self._closed:
            raise ValueError("the document is already closed")
        reader = PdfReader(io.BytesIO(source) if isinstance(source, bytes) else source)
        if reader.is_encrypted:
            raise ValueError("an encrypted PDF cannot be merged")
        numbers: dict[tuple[int, int], int] = {}
        pending: deque[tuple[int, PdfObject]] = deque()
        pages = list(reader.pages)
        for page in pages:
            if page.indirect_reference is not None:
                key = (page.indirect_reference.idnum, page.indirect_reference.generation)
                number = numbers.setdefault(key, self._allocate())
            else:
                number = self._allocate()
            if "/Parent" in page:
                del page["/Parent"]  # the source's page tree must not be copied along
            self._renumber(page, numbers, pending)
            page[NameObject("/Parent")] = IndirectObject(_PAGES, 0, None)
            self._kids.append(number)
            self._write_object(number, page)
            self._drain(numbers, pending)
        return len(pages)

    def close(self) -> None:
        """Write the catalog, the page tree, the cross-reference table and the trailer."""
        if self._closed:
            return
        if not self._kids:
            raise ValueError("a PDF needs at least one page")
        self._closed = True
        kids = " ".join(f"{number} 0 R" for number in self._kids)
        self._write_raw(_PAGES, f"<< /Type /Pages /Kids [{kids}] /Count {len(self._kids)} >>".encode("ascii"))
        self._write_raw(_CATALOG, f"<< /Type /Catalog /Pages {_PAGES} 0 R >>".encode("ascii"))
        xref_at = self._position
        lines = [f"xref\n0 {len(self._offsets)}\n", "0000000000 65535 f \n"]
        lines += [f"{offset:010d} 00000 n \n" for offset in self._offsets[1:]]
        self._write("".join(lines).encode("ascii"))
        self._write(
            f"trailer\n<< /Size {len(self._offsets)} /Root {_CATALOG} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode(
                "ascii"
            )
        )

    # -- internals -------------------------------------------------------------------------------------------

    def _allocate(self) -> int:
        self._offsets.append(0)
        return len(self._offsets) - 1

    def _renumber(
        self, obj: PdfObject, numbers: dict[tuple[int, int], int], pending: deque[tuple[int, PdfObject]]
    ) -> PdfObject:
        """Replace, in place, every reference inside ``obj`` by the output's number, queueing what is new."""
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            number = numbers.get(key)
            if number is None:
                number = numbers[key] = self._allocate()
                target = obj.get_object()
                pending.append((number, NullObject() if target is None else target))
            return IndirectObject(number, 0, None)
        if isinstance(obj, DictionaryObject):  # also every stream's dictionary
            for key, value in list(dict.items(obj)):
                dict.__setitem__(obj, key, self._renumber(value, numbers, pending))
        elif isinstance(obj, ArrayObject):
            for index, value in enumerate(list.__iter__(obj)):
                list.__setitem__(obj, index, self._renumber(value, numbers, pending))
        return obj

    def _drain(self, numbers: dict[tuple[int, int], int], pending: deque[tuple[int, PdfObject]]) -> None:
        while pending:
            number, obj = pending.popleft()
            self._renumber(obj, numbers, pending)
            self._write_object(number, obj)

    def _write_object(self, number: int, obj: PdfObject) -> None:
        self._offsets[number] = self._position
        body = io.BytesIO()
        obj.write_to_stream(body)
        self._write(f"{number} 0 obj\n".encode("ascii") + body.getvalue() + b"\nendobj\n")

    def _write_raw(self, number: int, body: bytes) -> None:
        self._offsets[number] = self._position
        self._write(f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n")

    def _write(self, data: bytes) -> None:
        self._output.write(data)
        self._position += len(data)
