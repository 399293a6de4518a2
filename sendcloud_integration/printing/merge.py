"""Merging stored shipping labels into one PDF, so a warehouse prints a whole batch in one go.

Memory. pypdf cannot write a PDF as a stream: ``PdfWriter`` keeps every page it was given until
``write`` serialises the whole document. What this module does to keep memory down:

- Sources are consumed one at a time from an iterable (``iter_stored_files`` opens each stored file
  only when the merge reaches it and closes it right after), so at most one source file is open and
  the sources' raw bytes are never all held at once. ``PdfWriter.append`` copies the pages' objects
  into the writer, which is what makes closing the source right away safe.
- ``write_merged_pdf`` writes the result into any binary file, so a caller can spool it to a
  temporary file on disk instead of holding a second copy of the output as ``bytes``.

What remains in memory is the writer's copy of every page. A Sendcloud label is a one-page PDF of
roughly 20-100 KB, so a batch of 10,000 labels means some 0.2-1 GB in the web process for the
duration of the request, plus the time to parse 10,000 files. That is acceptable for the batch sizes
shops print at once (hundreds); for the largest batches the way forward is to build the merged file
once, in a Celery task when the batch finishes, keep it in storage, and serve that file — a finished
batch's labels no longer change.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO, cast

from django.core.files import File
from django.core.files.storage import Storage
from pypdf import PdfWriter


def iter_stored_files(names: Iterable[str], *, storage: Storage) -> Iterator[BinaryIO]:
    """Open each stored file only when it is asked for, and close it when the next one is asked for.

    Meant to be handed straight to ``write_merged_pdf``/``merge_pdfs``: a generator keeps a single
    file open at any moment, however many names there are.
    """
    for name in names:
        with storage.open(name, "rb") as handle:
            # Django's File proxies read/seek/tell to the real file, which is all pypdf uses.
            yield cast(BinaryIO, handle)


#: What can be merged: raw bytes, an open binary file, or a Django ``File``/``FieldFile`` (such as
#: ``OrderShipment.label_file``), which is opened for the append and closed right after.
PdfSource = bytes | BinaryIO | File


def write_merged_pdf(files: Iterable[PdfSource], output: BinaryIO) -> int:
    """Append every page of every PDF in ``files``, in order, and write the result to ``output``.

    Returns the page count. Raises ``pypdf.errors.PdfReadError`` for a source that is not a PDF, and
    the storage's error for a missing file: a label missing from the printout must never pass
    silently. Open binary files stay open (their owner closes them); Django files are closed.
    """
    writer = PdfWriter()
    for source in files:
        if isinstance(source, bytes):
            writer.append(io.BytesIO(source))
        elif isinstance(source, File):
            with source.open("rb") as handle:
                writer.append(cast(BinaryIO, handle))
        else:
            writer.append(source)
    pages = len(writer.pages)
    writer.write(output)
    writer.close()
    return pages


def merge_pdfs(files: Iterable[PdfSource]) -> bytes:
    """The merged PDF as bytes; convenient for small merges and tests (see the module docstring)."""
    output = io.BytesIO()
    write_merged_pdf(files, output)
    return output.getvalue()
