"""Fair by account: a batch's chunks go to the broker only as fast as their Sendcloud account takes them.

Every shop has its own Sendcloud account and request budget (``sendcloud.budget``), but all shops share
the workers and the broker's queue. Sent all at once, a 20,000-order push put 200 chunk messages in
front of every other shop's work, though its own budget lets it send only 100 of them a minute: a shop
pushing 50 orders on an idle account waited for the whole backlog.

So each account has a **release window**: at most ``SENDCLOUD_ACCOUNT_WINDOW`` of its chunks are
*released* (``PushChunk.released_at`` set: sent to the broker, waiting there, running, or handed back
to wait for the budget) at a time. The rest stay PENDING in the database, which holds them for free.
When a chunk is finished, its task releases the account's next one (oldest batch first, then by
number); the sweep tops up every account with work as a safety net. The broker therefore holds at most
a window's worth of each busy account's chunks, and a newcomer's chunks queue behind a few messages per
busy account — work those accounts' budgets can send now — never behind their backlog.

Guarantees:

- **Nothing is stranded.** Releasing is a database write; the messages are sent after it commits. A
  dispatcher that dies in between leaves released chunks without a message: the sweep sends them again
  once their release is ``SENDCLOUD_STALE_AFTER_SECONDS`` old (``chunks.abandoned_chunks``). A chain
  broken by a crash (a chunk done, its successor never released) is restarted by the sweep's top-up or by
  the redelivered message of the dead task.
- **Claims stay exclusive.** Releasing only decides when a message is sent; ``chunks.claim_chunk``
  still decides who works on a chunk, so a second message for the same chunk (the sweep, a redelivery)
  does nothing.
- **Each batch is finished once.** The task that finishes a batch's last chunk sends ``finish_batch``;
  so may the task of a duplicate message, and so does the sweep for a batch whose callback never came.
  ``batches.finish_batch`` is a conditional update, so only the first of them finishes the batch.

Releases of one account are serialised by locking its integration rows (``SELECT … FOR UPDATE``), so two
chunks finishing at the same moment cannot both fill the same free place in its window.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from sendcloud_integration.models import BatchStatus, ChunkStatus, PushBatch, PushChunk, SendcloudIntegration
from sendcloud_integration.pipeline import dispatch

logger = logging.getLogger(__name__)

#: Batches whose chunks may still be released (a finished or deleted batch has nothing to send).
_OPEN = (BatchStatus.QUEUED, BatchStatus.RUNNING)

#: An account is named by its Sendcloud public key, as the request budget is. ``None``: shops without a
#: Sendcloud integration (their chunks fail at once, but they too must leave the database).
Account = str | None


def _of_account(account: Account) -> Q:
    if account is None:
        return Q(batch__shop__sendcloud_integration__isnull=True)
    return Q(batch__shop__sendcloud_integration__public_key=account)


def _open_chunks(account: Account) -> QuerySet[PushChunk]:
    return PushChunk.objects.filter(_of_account(account), batch__status__in=_OPEN)


def account_of(batch_id: uuid.UUID) -> Account:
    """The Sendcloud account a batch's requests are made with (its shop's integration's public key)."""
    row = PushBatch.objects.filter(pk=batch_id).values_list("shop__sendcloud_integration__public_key", flat=True)
    return row.first()


def release(account: Account) -> int:
    """Top the account's window up: release its next chunks and send them. Returns how many were sent."""
    window = settings.SENDCLOUD_ACCOUNT_WINDOW
    with transaction.atomic():
        if account is not None:
            # The lock that serialises this account's releases; other accounts are not held up.
            list(
                SendcloudIntegration.objects.select_for_update()
                .filter(public_key=account)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        chunks = _open_chunks(account)
        in_window = chunks.filter(
            released_at__isnull=False, status__in=[ChunkStatus.PENDING, ChunkStatus.RUNNING]
        ).count()
        room = window - in_window
        if room <= 0:
            return 0
        picked = list(
            chunks.filter(released_at__isnull=True, status=ChunkStatus.PENDING)
            .order_by("batch__created_at", "batch_id", "number")
            .values_list("pk", "batch_id", "number")[:room]
        )
        if not picked:
            return 0
        PushChunk.objects.filter(pk__in=[pk for pk, _, _ in picked], released_at__isnull=True).update(
            released_at=timezone.now()
        )
    by_batch: dict[uuid.UUID, list[int]] = defaultdict(list)
    for _, batch_id, number in picked:
        by_batch[batch_id].append(number)
    # After the commit: a worker that takes a message must find its chunk released. A send that fails
    # here leaves released chunks without a message; the sweep sends them again once they are stale.
    for batch_id, numbers in by_batch.items():
        dispatch.dispatch_batch(batch_id, numbers)
    return len(picked)


def start_batch(batch_id: uuid.UUID) -> int:
    """A batch was pushed: release what its account's window has room for (``tasks.start_batch``)."""
    if not PushBatch.objects.filter(pk=batch_id).exists():
        logger.warning("start_batch: batch=%s no longer exists; nothing to release", batch_id)
        return 0
    return release(account_of(batch_id))


def chunk_finished(batch_id: uuid.UUID, *, account: Account) -> None:
    """A run of one of the batch's chunks ended without a hand-back: finish the batch if that was its
    last open chunk, and pass the freed place in the window on to the account's next chunk.

    ``account`` is the batch's (:func:`account_of`), which the run knows already.
    """
    if not PushChunk.objects.filter(batch_id=batch_id).exclude(status=ChunkStatus.DONE).exists():
        dispatch.finish_batch(batch_id)
    release(account)


def top_up_all() -> int:
    """The sweep's round over every account with chunks waiting: top each one's window up."""
    accounts = (
        PushChunk.objects.filter(batch__status__in=_OPEN, status=ChunkStatus.PENDING, released_at__isnull=True)
        .values_list("batch__shop__sendcloud_integration__public_key", flat=True)
        .distinct()
        .order_by()
    )
    return sum(release(account) for account in list(accounts))
