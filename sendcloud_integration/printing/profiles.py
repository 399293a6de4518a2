"""What a batch document is printed as: the shop's printer profile, overridden per request.

A :class:`DocumentSpec` is format, paper size, resolution and order of pages. :func:`resolve_spec` is the
one place that turns a shop's :class:`~sendcloud_integration.models.PrinterProfile` (or the defaults, PDF on
A6 by order number) plus a request's ``format``/``paper_size``/``dpi``/``sort`` into one, and refuses a
combination Sendcloud does not serve with an :class:`~wemasy.errors.InvalidInput` naming the field.

Rules. PDF is 72 dpi; PNG 150 or 300 (default 300); ZPL's resolution is the carrier's (203 dpi for most)
and it has no paper size, so ``paper_size`` or a ``dpi`` other than 203 with ZPL is refused. When only the
format is overridden, the profile's paper size and dpi are kept if they fit the new format, and the
format's defaults are used otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from sendcloud_integration.limits import DEFAULT_LABEL_DPI, LABEL_DPIS, LABEL_MEDIA_TYPES, PAPER_SIZES
from sendcloud_integration.models import LabelFormat, PaperSize, PrinterProfile, PrintSort
from webshop.models import Shop
from wemasy.errors import InvalidInput

#: The file extension of a batch document per format (PNG labels come as a zip of images).
EXTENSIONS = {LabelFormat.PDF: "pdf", LabelFormat.ZPL: "zpl", LabelFormat.PNG: "zip"}
#: The Content-Type a batch document is served with.
DOCUMENT_MEDIA_TYPES = {
    LabelFormat.PDF: "application/pdf",
    LabelFormat.ZPL: "application/zpl",
    LabelFormat.PNG: "application/zip",
}


@dataclass(frozen=True)
class DocumentSpec:
    """One way to print a batch: ``label_format`` pdf/zpl/png, ``paper_size`` ("" for ZPL), ``dpi``, ``sort``."""

    label_format: str
    paper_size: str
    dpi: int
    sort: str

    @property
    def variant(self) -> str:
        """The label files' key for this format: ``zpl``, ``pdf-A4``, ``png-A6-300``."""
        if self.label_format == LabelFormat.ZPL:
            return "zpl"
        if self.label_format == LabelFormat.PDF:
            return f"pdf-{self.paper_size}"
        return f"png-{self.paper_size}-{self.dpi}"

    @property
    def is_stored_label(self) -> bool:
        """True for PDF A6: the label phase's own files (``ShipmentParcel.label_file``), nothing to fetch."""
        return self.variant == "pdf-A6"

    @property
    def label_media_type(self) -> str:
        return LABEL_MEDIA_TYPES[self.label_format]

    @property
    def media_type(self) -> str:
        return DOCUMENT_MEDIA_TYPES[LabelFormat(self.label_format)]

    @property
    def extension(self) -> str:
        return EXTENSIONS[LabelFormat(self.label_format)]

    def describe(self) -> str:
        """For people: "ZPL", "PDF A4", "PNG A6 300 dpi"."""
        if self.label_format == LabelFormat.ZPL:
            return "ZPL"
        if self.label_format == LabelFormat.PDF:
            return f"PDF {self.paper_size}"
        return f"PNG {self.paper_size} {self.dpi} dpi"


def profile_of(shop: Shop) -> PrinterProfile:
    """The shop's printer profile, or an unsaved one with the defaults (PDF, A6, by order number)."""
    found = PrinterProfile.objects.filter(shop=shop).first()
    return found if found is not None else PrinterProfile(shop=shop)


def resolve_spec(
    shop: Shop,
    *,
    label_format: str | None = None,
    paper_size: str | None = None,
    dpi: int | None = None,
    sort: str | None = None,
) -> DocumentSpec:
    """The profile's spec with the given overrides; :class:`InvalidInput` for a combination that cannot be served."""
    profile = profile_of(shop)
    return spec_from(
        label_format=label_format,
        paper_size=paper_size,
        dpi=dpi,
        sort=sort,
        defaults=DocumentSpec(
            label_format=profile.label_format,
            paper_size=profile.paper_size,
            dpi=profile.dpi or DEFAULT_LABEL_DPI[profile.label_format],
            sort=profile.sort,
        ),
    )


def spec_from(
    *,
    label_format: str | None,
    paper_size: str | None,
    dpi: int | None,
    sort: str | None,
    defaults: DocumentSpec,
) -> DocumentSpec:
    """Apply the overrides to ``defaults`` with the rules of the module docstring (also checks a profile)."""
    chosen_format = label_format or defaults.label_format
    if chosen_format not in LABEL_MEDIA_TYPES:
        raise InvalidInput(f"format must be one of {', '.join(sorted(LABEL_MEDIA_TYPES))}.", field="format")
    chosen_sort = sort or defaults.sort
    if chosen_sort not in PrintSort.values:
        raise InvalidInput(f"sort must be one of {', '.join(PrintSort.values)}.", field="sort")
    if paper_size is not None and paper_size not in PAPER_SIZES:
        raise InvalidInput(f"paper_size must be one of {', '.join(sorted(PAPER_SIZES))}.", field="paper_size")
    valid_dpis = LABEL_DPIS[chosen_format]
    if chosen_format == LabelFormat.ZPL:
        if paper_size is not None:
            raise InvalidInput(
                "paper_size does not apply to ZPL: a ZPL label is the carrier's 4x6 in label.", field="paper_size"
            )
        if dpi is not None and dpi not in valid_dpis:
            raise InvalidInput("dpi does not apply to ZPL: the carrier sets its resolution (203 dpi).", field="dpi")
        return DocumentSpec(label_format=chosen_format, paper_size="", dpi=DEFAULT_LABEL_DPI["zpl"], sort=chosen_sort)
    if dpi is not None and dpi not in valid_dpis:
        raise InvalidInput(
            f"dpi for {chosen_format.upper()} must be one of {', '.join(str(d) for d in sorted(valid_dpis))}.",
            field="dpi",
        )
    chosen_paper = paper_size or defaults.paper_size or PaperSize.A6
    if chosen_paper not in PAPER_SIZES:
        chosen_paper = PaperSize.A6
    if dpi is None:
        dpi = defaults.dpi if defaults.dpi in valid_dpis else DEFAULT_LABEL_DPI[chosen_format]
    return DocumentSpec(label_format=chosen_format, paper_size=chosen_paper, dpi=dpi, sort=chosen_sort)
