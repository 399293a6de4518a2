"""Fewer indexes on OrderShipment: each one is written for every row a push queues.

Drops the single-column indexes on ``shop_id`` and ``batch_id`` (the composite indexes lead with those
columns, so every query keeps an index) and the ``LIKE`` index PostgreSQL gets for a ``db_index``
CharField (no query searches states by pattern); the plain index on ``state`` stays, renamed. Only
indexes change, with plain DDL: Django's own ``AlterField`` for ``db_index`` on a foreign key would
also drop and re-validate the foreign-key constraints over the whole table.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "sendcloud_integration_ordershipment"
#: Django's names for the indexes of ``db_index=True`` (deterministic: the same on every database).
BATCH_INDEX = "sendcloud_integration_ordershipment_batch_id_e5a8b7e6"
SHOP_INDEX = "sendcloud_integration_ordershipment_shop_id_b2b1d4c1"
STATE_INDEX = "sendcloud_integration_ordershipment_state_260543ee"
STATE_LIKE_INDEX = "sendcloud_integration_ordershipment_state_260543ee_like"
NEW_STATE_INDEX = "ordershipment_state_idx"


def drop_indexes(apps, schema_editor):
    q = schema_editor.quote_name
    for name in (BATCH_INDEX, SHOP_INDEX, STATE_LIKE_INDEX):
        schema_editor.execute(f"DROP INDEX IF EXISTS {q(name)}")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER INDEX IF EXISTS {q(STATE_INDEX)} RENAME TO {q(NEW_STATE_INDEX)}")
    else:
        schema_editor.execute(f"DROP INDEX IF EXISTS {q(STATE_INDEX)}")
        schema_editor.execute(f"CREATE INDEX {q(NEW_STATE_INDEX)} ON {q(TABLE)} ({q('state')})")


def restore_indexes(apps, schema_editor):
    q = schema_editor.quote_name
    schema_editor.execute(f"DROP INDEX IF EXISTS {q(NEW_STATE_INDEX)}")
    schema_editor.execute(f"CREATE INDEX {q(STATE_INDEX)} ON {q(TABLE)} ({q('state')})")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX {q(STATE_LIKE_INDEX)} ON {q(TABLE)} ({q('state')} varchar_pattern_ops)")
    schema_editor.execute(f"CREATE INDEX {q(BATCH_INDEX)} ON {q(TABLE)} ({q('batch_id')})")
    schema_editor.execute(f"CREATE INDEX {q(SHOP_INDEX)} ON {q(TABLE)} ({q('shop_id')})")


class Migration(migrations.Migration):
    dependencies = [
        ("sendcloud_integration", "0006_printing"),
        ("webshop", "0002_order_shipping_data"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="ordershipment",
                    name="batch",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="shipments",
                        to="sendcloud_integration.pushbatch",
                    ),
                ),
                migrations.AlterField(
                    model_name="ordershipment",
                    name="shop",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="shipments",
                        to="webshop.shop",
                    ),
                ),
                migrations.AlterField(
                    model_name="ordershipment",
                    name="state",
                    field=models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("pushing", "Pushing"),
                            ("pushed", "Pushed"),
                            ("label_queued", "Label queued"),
                            ("labelling", "Labelling"),
                            ("labelled", "Labelled"),
                            ("failed", "Failed"),
                        ],
                        max_length=16,
                    ),
                ),
                migrations.AddIndex(
                    model_name="ordershipment",
                    index=models.Index(fields=["state"], name="ordershipment_state_idx"),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
        ),
    ]
