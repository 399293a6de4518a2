"""PushChunk.released_at: chunks go to the broker only as fast as their account's window allows.

Chunks that exist already were all sent to the broker by the chord of their batch: they count as released,
so the release window neither sends them a second time nor loses them.
"""

from django.db import migrations, models
from django.db.models.functions import Now


def mark_existing_released(apps, schema_editor):  # type: ignore[no-untyped-def]
    PushChunk = apps.get_model("sendcloud_integration", "PushChunk")
    PushChunk.objects.filter(released_at__isnull=True).update(released_at=Now())


class Migration(migrations.Migration):
    dependencies = [
        ("sendcloud_integration", "0008_service_points_and_customs_defaults"),
    ]

    operations = [
        migrations.AddField(
            model_name="pushchunk",
            name="released_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When it was sent to the workers (None: waiting for its account's turn).",
                null=True,
            ),
        ),
        migrations.RunPython(mark_existing_released, migrations.RunPython.noop),
    ]
