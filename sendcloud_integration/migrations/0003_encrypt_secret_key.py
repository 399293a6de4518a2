"""Encrypt the Sendcloud secret keys at rest (FIELD_ENCRYPTION_KEYS, see wemasy/encryption.py).

Three steps, so that no historical model ever reads a plain value through the encrypting field: widen
the column to text, encrypt the stored values in place, then switch the field to the encrypted one
(no change to the column). Values that already look encrypted are left alone, so a re-run is harmless.
Reversing decrypts them again.
"""

from django.conf import settings
from django.db import migrations, models

import wemasy.encryption


def encrypt_secrets(apps, schema_editor):
    integrations = apps.get_model("sendcloud_integration", "SendcloudIntegration")
    plain = [value for value in integrations.objects.values_list("secret_key", flat=True) if value]
    if plain and not settings.FIELD_ENCRYPTION_KEYS_FROM_ENVIRONMENT and schema_editor.connection.vendor != "sqlite":
        # A development key (generated under var/ in debug mode) must never encrypt a real database's
        # secrets: lose var/ and they are gone.
        raise RuntimeError(
            "Set FIELD_ENCRYPTION_KEYS before migrating: this database holds Sendcloud secrets to encrypt, and "
            "only the development key (var/field-encryption.key) is configured."
        )
    for pk, value in integrations.objects.values_list("pk", "secret_key"):
        if value and not wemasy.encryption.is_encrypted(value):
            integrations.objects.filter(pk=pk).update(secret_key=wemasy.encryption.encrypt(value))


def decrypt_secrets(apps, schema_editor):
    integrations = apps.get_model("sendcloud_integration", "SendcloudIntegration")
    for pk, value in integrations.objects.values_list("pk", "secret_key"):
        if value and wemasy.encryption.is_encrypted(value):
            integrations.objects.filter(pk=pk).update(secret_key=wemasy.encryption.decrypt(value))


class Migration(migrations.Migration):
    dependencies = [("sendcloud_integration", "0002_repush_permission")]

    operations = [
        migrations.AlterField(
            model_name="sendcloudintegration", name="secret_key", field=models.TextField(max_length=200)
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets, elidable=False),
        migrations.AlterField(
            model_name="sendcloudintegration",
            name="secret_key",
            field=wemasy.encryption.EncryptedTextField(max_length=200),
        ),
    ]
