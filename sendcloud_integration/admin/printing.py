"""Printing for staff: a batch's Print page, its document downloads, and each shop's printer profile.

The Print page shows the shop's printer profile (the default), a form for any other format, paper size,
resolution and order, and the batch's stored documents with their progress while a worker builds them
(the page refreshes itself meanwhile). Downloads are the API's documents (``printing.documents``,
``printing.responses``): never built in the request; a document on its way sends staff to the Print
page, and a failed build shows its message there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from sendcloud_integration.admin.display import show_error
from sendcloud_integration.admin.views import object_or_404
from sendcloud_integration.models import (
    BatchDocument,
    DocumentStatus,
    LabelFormat,
    PaperSize,
    PrinterProfile,
    PrintSort,
    PushBatch,
)
from sendcloud_integration.printing import documents, responses
from sendcloud_integration.printing.profiles import DocumentSpec, profile_of, resolve_spec, spec_from
from wemasy.errors import ApplicationError, InvalidInput

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

#: Seconds between refreshes of a Print page while a document is being built.
PRINT_REFRESH_SECONDS = 3
#: Who may press "Build again" (viewing a batch lets staff download its documents, not rebuild them).
BUILD_AGAIN_PERMISSION = "sendcloud_integration.change_batchdocument"


class PrintForm(forms.Form):
    """The overrides of the download (empty: the printer profile's)."""

    format = forms.ChoiceField(choices=[("", "profile's"), *LabelFormat.choices], required=False)
    paper_size = forms.ChoiceField(choices=[("", "profile's"), *PaperSize.choices], required=False)
    dpi = forms.TypedChoiceField(
        choices=[
            ("", "profile's"),
            ("72", "72 (PDF)"),
            ("150", "150 (PNG)"),
            ("300", "300 (PNG)"),
            ("203", "203 (ZPL)"),
        ],
        coerce=int,
        empty_value=None,
        required=False,
    )
    sort = forms.ChoiceField(choices=[("", "profile's"), *PrintSort.choices], required=False)


def _overrides(data: Any) -> dict[str, Any]:
    """The download's overrides from a query string; InvalidInput for a value the form does not take."""
    form = PrintForm(data)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise InvalidInput(f"{field}: {errors[0]}", field=field)
    cleaned = form.cleaned_data
    return {
        "label_format": cleaned.get("format") or None,
        "paper_size": cleaned.get("paper_size") or None,
        "dpi": cleaned.get("dpi"),
        "sort": cleaned.get("sort") or None,
    }


def print_url(batch: PushBatch) -> str:
    return reverse("admin:sendcloud_integration_pushbatch_print", args=[batch.pk])


def download_url(batch: PushBatch, spec: DocumentSpec | None = None) -> str:
    url = reverse("admin:sendcloud_integration_pushbatch_labels", args=[batch.pk])
    if spec is None:
        return url
    query: dict[str, str | int] = {"format": spec.label_format, "sort": spec.sort}
    if spec.label_format != LabelFormat.ZPL:  # ZPL has neither: the carrier's 4x6 in label at its resolution
        query["dpi"] = spec.dpi
        query["paper_size"] = spec.paper_size
    return f"{url}?{urlencode(query)}"


def labels_view(model_admin: ModelAdmin[PushBatch]) -> Callable[[HttpRequest, str], HttpResponseBase]:
    """A batch document for staff: streamed when stored; otherwise back to the Print page (with why)."""

    @require_http_methods(["GET", "HEAD"])
    def view(request: HttpRequest, object_id: str) -> HttpResponseBase:
        batch = object_or_404(model_admin, request, object_id)
        if not model_admin.has_view_permission(request, batch):
            raise PermissionDenied
        try:
            state = documents.document_for(batch=batch, **_overrides(request.GET))
        except ApplicationError as exc:
            show_error(request, exc)
            back = print_url(batch) if exc.http_status != 404 else _change_url(batch)
            return HttpResponseRedirect(back)
        if state.availability is documents.Availability.READY and state.document is not None:
            served = responses.document_response(request, state.document, state.spec)
            if served is not None:
                return served
        if state.availability is documents.Availability.WAITING_FOR_LABELS:
            messages.info(request, "The batch is still making its labels; its documents are built once it is done.")
        else:
            messages.info(request, f"The {state.spec.describe()} document is being built; it is listed below.")
        return HttpResponseRedirect(print_url(batch))

    return view


def print_view(model_admin: ModelAdmin[PushBatch]) -> Callable[[HttpRequest, str], HttpResponseBase]:
    """GET: the Print page. POST ``document=<id>``: build that document again (after a failure, say).

    Building again needs ``BUILD_AGAIN_PERMISSION`` besides viewing the batch; without it the button is not
    shown and a POST is refused (403).
    """

    @require_http_methods(["GET", "POST"])
    def view(request: HttpRequest, object_id: str) -> HttpResponseBase:
        batch = object_or_404(model_admin, request, object_id)
        if not model_admin.has_view_permission(request, batch):
            raise PermissionDenied
        can_build_again = request.user.has_perm(BUILD_AGAIN_PERMISSION)
        if request.method == "POST":
            if not can_build_again:
                raise PermissionDenied
            document = BatchDocument.objects.filter(batch=batch, pk=request.POST.get("document") or 0).first()
            if document is None:
                messages.error(request, "No such document of this batch.")
            else:
                documents.build_again(document=document)
                messages.success(request, "The document is being built again.")
            return HttpResponseRedirect(print_url(batch))
        profile = profile_of(batch.shop)
        default = resolve_spec(batch.shop)
        stored = documents.batch_documents(batch=batch)
        rows = [
            {
                "document": document,
                "spec": (spec := DocumentSpec(document.label_format, document.paper_size, document.dpi, document.sort)),
                "percentage": documents.DocumentState(documents.Availability.BUILDING, spec, document).percentage,
                "url": download_url(batch, spec),
            }
            for document in stored
        ]
        others = [
            DocumentSpec("pdf", "A6", 72, default.sort),
            DocumentSpec("pdf", "A4", 72, default.sort),
            DocumentSpec("zpl", "", 203, default.sort),
            DocumentSpec("png", "A6", 300, default.sort),
        ]
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "original": batch,
            "title": f"Print the labels of batch {str(batch.pk)[:8]}",
            "change_url": _change_url(batch),
            "profile": profile,
            "profile_url": _profile_url(profile),
            "default": default,
            "default_url": download_url(batch),
            "others": [(spec, download_url(batch, spec)) for spec in others if spec.variant != default.variant],
            "form": PrintForm(),
            "form_action": download_url(batch),
            "rows": rows,
            "building": any(document.status == DocumentStatus.BUILDING for document in stored),
            "refresh_seconds": PRINT_REFRESH_SECONDS,
            "batch_finished": batch.is_finished,
            "can_build_again": can_build_again,
        }
        return TemplateResponse(request, "sendcloud_integration/admin/batch_print.html", context)

    return view


def _change_url(batch: PushBatch) -> str:
    return reverse("admin:sendcloud_integration_pushbatch_change", args=[batch.pk])


def _profile_url(profile: PrinterProfile) -> str:
    if profile.pk:
        return reverse("admin:sendcloud_integration_printerprofile_change", args=[profile.pk])
    return f"{reverse('admin:sendcloud_integration_printerprofile_add')}?shop={profile.shop_id}"


# --- printer profiles ------------------------------------------------------------------------------------------


class PrinterProfileForm(forms.ModelForm):
    class Meta:
        model = PrinterProfile
        fields = ("shop", "label_format", "paper_size", "dpi", "sort")

    def clean(self) -> dict[str, Any]:
        """Refuse what Sendcloud does not serve (PNG at 72 dpi...), with the same rules as a download's."""
        cleaned = super().clean() or {}
        label_format = cleaned.get("label_format") or LabelFormat.PDF
        try:
            spec_from(
                label_format=label_format,
                paper_size=None if label_format == LabelFormat.ZPL else cleaned.get("paper_size"),
                dpi=cleaned.get("dpi"),
                sort=cleaned.get("sort"),
                defaults=DocumentSpec(label_format, "A6", 0, PrintSort.ORDER_NUMBER),
            )
        except InvalidInput as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(PrinterProfile)
class PrinterProfileAdmin(admin.ModelAdmin):
    """How each shop prints by default; every download may override it."""

    form = PrinterProfileForm
    list_display = ("shop", "label_format", "paper_size", "dpi", "sort", "updated_at")
    list_select_related = ("shop",)
