"""Loaded with ``-p`` before pytest-django reads the settings: safe defaults for a test run.

Only defaults: anything already set in the environment (CI sets DATABASE_URL and REDIS_URL) wins.
"""

import os
import tempfile
import uuid

from cryptography.fernet import Fernet

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key")
# A key of this run's own for the secrets encrypted at rest (integration tests' processes inherit it).
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
# Every Redis key of this run carries its own prefix, and the suite deletes only those: the Redis it
# is given may be shared (CI's is), and must never be flushed.
os.environ.setdefault("CACHE_KEY_PREFIX", f"wemasy-test-{uuid.uuid4().hex[:10]}")
os.environ.setdefault("SENDCLOUD_BUDGET_KEY_PREFIX", os.environ["CACHE_KEY_PREFIX"])
# Each run gets its own var/ (file cache, budget files, media): two runs side by side must not
# count each other's requests.
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="wemasy-tests-"))
os.environ.setdefault("SENDCLOUD_API_BASE_URL", "https://sendcloud.test/api")
os.environ.setdefault("SENDCLOUD_RETRY_BASE_SECONDS", "0")
# The request budget has its own tests; elsewhere it would only slow unit tests down.
os.environ.setdefault("SENDCLOUD_BUDGET_ENABLED", "0")
# The test process never talks to a real broker: integration tests run the web server and the
# worker as separate processes with their own (real) broker settings.
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("CELERY_RESULT_BACKEND", "cache+memory://")
