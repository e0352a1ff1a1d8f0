"""The schema (SQLAlchemy Core). Alembic migrations in meta/migrations create it; `alembic check`
in the tests keeps the two in step.

Blob bytes live in the blob store; the `blobs` table says which digests are stored and
`repository_blobs` which repositories may serve them (a blob is only readable through a
repository it was pushed or mounted to, as in distribution).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Digests are up to 7 ("sha512:") + 128 characters.
DIGEST = String(160)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The fixed password for `docker login`, separate from the account password (as ACR and TCR do).
    Column("registry_password_hash", String(255), nullable=True),
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_push_at", DateTime(timezone=True), nullable=True),
    Column("summary", String(255), nullable=True),
    Column("description", Text, nullable=True),
    # 'public' or 'private'; NULL inherits the namespace's default.
    Column("visibility", String(8), nullable=True),
)

# A repository belongs to the namespace named by the first component of its name
# ("team/app" -> "team"); a one-component name ("busybox") belongs to "library", as on Docker Hub.
namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("public", Boolean, nullable=False, default=False),  # default visibility of its repositories
    Column("auto_create", Boolean, nullable=False, default=True),  # may a push create a repository?
    Column("created_at", DateTime(timezone=True), nullable=False),
)

namespace_members = Table(
    "namespace_members",
    metadata,
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False),  # owner | developer | guest
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Temporary passwords for `docker login`: shown once, expiring, revocable, optionally limited.
temp_passwords = Table(
    "temp_passwords",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("secret_hash", String(128), nullable=False),  # sha256 of a 256-bit random secret
    Column("description", String(255), nullable=True),
    Column("repositories", Text, nullable=True),  # JSON list of name patterns; NULL: no limit
    Column("actions", String(64), nullable=True),  # "pull" or "pull,push"…; NULL: no limit
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Index("ix_temp_passwords_user", "user_id"),
)

# Robot accounts of a namespace, for CI: log in as `robot$NAMESPACE+NAME`.
robots = Table(
    "robots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", String(255), nullable=True),
    Column("secret_hash", String(128), nullable=False),
    Column("permissions", Text, nullable=False),  # JSON [{"repositories": "app-*", "actions": ["pull","push"]}]
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("rotated_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("namespace_id", "name", name="uq_robots_namespace_name"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(160), nullable=False),
    Column("action", String(64), nullable=False),  # e.g. namespace.create, manifest.push, tag.delete
    Column("target", String(512), nullable=False),
    Column("detail", Text, nullable=True),  # JSON
    Column("remote", String(64), nullable=True),
    Index("ix_audit_events_at", "at"),
    Index("ix_audit_events_target", "target"),
)

# Logins to the web console. The cookie holds a random token; only its sha256 is stored, so a
# copy of the database does not hand out sessions. Logging out deletes the row.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 hex of the cookie's token
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("remote", String(64), nullable=True),
    Index("ix_console_sessions_expires", "expires_at"),
)

tag_pulls = Table(
    "tag_pulls",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Column("pulls", BigInteger, nullable=False),
    Column("last_pulled_at", DateTime(timezone=True), nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest", ondelete="CASCADE"), primary_key=True),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Index("ix_repository_blobs_digest", "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("artifact_type", String(255), nullable=True),
    Column("subject_digest", DIGEST, nullable=True),
    Column("annotations", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Image facts for listings (core/image.py), set at push; NULL for manifests pushed before
    # migration 0003 until ImagesService.backfill fills them. image_size: manifest + config +
    # layers, or for an index its own bytes + its children's image_size.
    Column("config_digest", DIGEST, nullable=True),
    Column("image_size", BigInteger, nullable=True),
    Column("platform", String(128), nullable=True),  # os/architecture[/variant]
    UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    Index("ix_manifests_subject", "repository_id", "subject_digest"),
)

# The bytes of manifests (one row per digest, shared by every repository holding it). Manifests
# live in the database rather than as files in the blob store: they are small (at most
# limits.manifest_max_bytes), read by digest, and written in the push's own transaction, so a
# push needs no file, no fsync and no rename, and a manifest is never recorded without its bytes.
# Rows go with their blob row (garbage collection). Manifests pushed before migration 0005 have
# no row here; their bytes are the blob store's file, as before.
manifest_contents = Table(
    "manifest_contents",
    metadata,
    Column("digest", DIGEST, ForeignKey("blobs.digest", ondelete="CASCADE"), primary_key=True),
    Column("content", LargeBinary, nullable=False),
)

# What a manifest references: blobs (config, layers; and its own bytes, kind 'self') and child
# manifests of an index. Garbage collection walks these.
manifest_blobs = Table(
    "manifest_blobs",
    metadata,
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Index("ix_manifest_blobs_digest", "digest"),
)

manifest_children = Table(
    "manifest_children",
    metadata,
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("child_digest", DIGEST, primary_key=True),
    Index("ix_manifest_children_child", "child_digest"),
)

tags = Table(
    "tags",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("manifest_digest", DIGEST, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_tags_manifest", "repository_id", "manifest_digest"),
    Index("ix_tags_updated", "repository_id", "updated_at"),
)

upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("repository", String(255), nullable=False),
    Column("offset", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("store_state", Text, nullable=True),  # the blob store's staging state (JSON)
    Column("hashed", String(200), nullable=True),  # "sha256:<hex>" of the first `offset` bytes
    Column("claimed_until", DateTime(timezone=True), nullable=True),  # a PATCH in progress holds it
    Index("ix_upload_sessions_updated", "updated_at"),
)

# Work that runs once cluster-wide (GC, the upload purge): a node holds a lease until `expires_at`.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("last_run_at", DateTime(timezone=True), nullable=True),
)

# Facts about the installation every node shares (its id, which the blob store is marked with).
cluster_facts = Table(
    "cluster_facts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The durable job queue (meta/jobs.py): work done later, by whichever worker takes it.
jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("args", Text, nullable=False),  # JSON object
    Column("state", String(16), nullable=False),  # queued | running | succeeded | failed | cancelled
    # At most one unfinished job per key (cleared when the job finishes).
    Column("unique_key", String(200), nullable=True),
    Column("priority", Integer, nullable=False, default=0),  # higher first
    Column("run_at", DateTime(timezone=True), nullable=False),  # not before (schedules, retry backoff)
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("holder", String(64), nullable=True),  # the worker running it…
    Column("lease_until", DateTime(timezone=True), nullable=True),  # …while it renews this
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("progress_done", BigInteger, nullable=True),
    Column("progress_total", BigInteger, nullable=True),
    Column("result", Text, nullable=True),  # JSON
    Column("error", Text, nullable=True),  # the last attempt's
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),  # of the last attempt
    Column("finished_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("unique_key"),
    Index("ix_jobs_ready", "state", "run_at"),
    Index("ix_jobs_kind", "kind", "id"),
    Index("ix_jobs_finished", "finished_at"),
)

# Scheduled jobs: one row per schedule; the node that moves `next_run_at` on enqueues the run.
job_schedules = Table(
    "job_schedules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("next_run_at", DateTime(timezone=True), nullable=False),
)

# The event outbox (core/events.py): written in the transaction of the change it describes;
# `dispatched_at` is set, in one transaction with what the subscribers do, when the dispatcher
# has handed the event on. Dispatched events are purged after jobs.retention_seconds.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("repository", String(256), nullable=True),
    Column("target", String(512), nullable=False),
    Column("detail", Text, nullable=True),  # JSON object
    Column("actor", String(160), nullable=False),
    Column("remote", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("dispatched_at", DateTime(timezone=True), nullable=True),
    Index("ix_events_pending", "dispatched_at", "id"),
)

# Scans (registry/scans.py): one row per image manifest digest, shared by every repository that
# holds it (content is content). `inventory` (what the layers hold) is kept so that a new advisory
# database re-evaluates the image without reading a layer again; `findings` is the last
# evaluation. Both are zlib-compressed JSON. The row goes with the manifest's blob row (GC).
scans = Table(
    "scans",
    metadata,
    Column("digest", DIGEST, ForeignKey("blobs.digest", ondelete="CASCADE"), primary_key=True),
    Column("status", String(16), nullable=False),  # queued | running | done | failed | unsupported
    Column("error", Text, nullable=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("scanned_at", DateTime(timezone=True), nullable=True),  # when the layers were last read
    Column("evaluated_at", DateTime(timezone=True), nullable=True),  # when findings were last computed
    Column("os_id", String(64), nullable=True),
    Column("os_version", String(64), nullable=True),
    Column("inventory", LargeBinary, nullable=True),
    Column("findings", LargeBinary, nullable=True),
    Column("summary", Text, nullable=True),  # JSON {"critical": n, …} before any allowlist
    Column("db_id", String(64), nullable=True),  # the advisory database the findings came from
    Column("db_updated_at", DateTime(timezone=True), nullable=True),
    Column("notes", Text, nullable=True),  # JSON list of strings
    Index("ix_scans_status", "status"),
)

# Per namespace scanning settings and pull policy; no row = the defaults (scan on push, block nothing).
scan_policies = Table(
    "scan_policies",
    metadata,
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), primary_key=True),
    Column("scan_on_push", Boolean, nullable=False, default=True),
    Column("block_severity", String(16), nullable=True),  # critical | high | medium | low; NULL: none
    Column("block_unscanned", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Vulnerabilities accepted (not counted by policies and summaries), system-wide (namespace_id
# NULL) or for one namespace, until `expires_at`.
scan_allowlist = Table(
    "scan_allowlist",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=True),
    Column("vulnerability", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("created_by", String(160), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_scan_allowlist_namespace", "namespace_id", "vulnerability"),
)

# Webhooks of a namespace (meta/webhooks.py): optionally only for repositories matching a glob;
# `events` is a JSON list of core/webhooks.py event types; `secret` is the signing secret sealed
# with the secrets key (core/secretbox.py), never the secret itself.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(255), nullable=True),  # a name or glob in the namespace; NULL: all of it
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list
    Column("format", String(16), nullable=False),  # dockyard | dockerhub
    Column("enabled", Boolean, nullable=False, default=True),
    Column("description", String(255), nullable=True),
    Column("secret", Text, nullable=False),
    Column("created_by", String(160), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhooks_namespace", "namespace_id"),
)

# One event (or ping) for one webhook: its body is fixed when it is made, so every attempt sends
# the same bytes under the same `webhook-id` (the row's id, time-ordered: msg_<ms><random>).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(64), nullable=False),  # image.pushed, ping…
    Column("event_id", BigInteger, nullable=True),  # the registry event it came from
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | succeeded | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    Index("ix_webhook_deliveries_created", "created_at"),
)

# Every attempt of a delivery: what was sent (headers; the body is the delivery's) and what came
# back (status, headers, at most 64 KiB of body), how long it took, or why there was no answer.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    Column("request_headers", Text, nullable=False),  # JSON object
    Column("response_status", Integer, nullable=True),
    Column("response_headers", Text, nullable=True),  # JSON list of [name, value]
    Column("response_body", Text, nullable=True),
    Column("response_truncated", Boolean, nullable=False, default=False),
    Column("duration_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)

# Automated builds (meta/builds.py). A repository's build configuration: its code source (the
# clone token, SSH deploy key and the provider webhook's secret sealed with the secrets key) and
# its rules (JSON, core/builds.py); `poll_state` is the refs last seen by polling (JSON).
build_configs = Table(
    "build_configs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(255), nullable=False, unique=True),
    Column("provider", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("token", Text, nullable=True),
    Column("ssh_key", Text, nullable=True),
    Column("webhook_secret", Text, nullable=False),
    Column("rules", Text, nullable=False),
    Column("auto_build", Boolean, nullable=False),
    Column("timeout_seconds", Integer, nullable=True),
    Column("cancel_superseded", Boolean, nullable=False),
    Column("poll_interval_seconds", Integer, nullable=True),
    Column("poll_state", Text, nullable=True),
    Column("polled_at", DateTime(timezone=True), nullable=True),
    Column("created_by", String(160), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One build: what it builds (`spec`: the rule as it was, JSON) and how it went. Its job runs it;
# `log_size` is the length of its log, kept in `build_log_chunks` (any node reads it live).
builds = Table(
    "builds",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("rule", Integer, nullable=True),
    Column("ref", String(400), nullable=False),
    Column("revision", String(64), nullable=True),
    Column("tags", Text, nullable=False),  # JSON list
    Column("spec", Text, nullable=False),
    Column("status", String(16), nullable=False),  # queued | running | succeeded | failed | cancelled
    Column("trigger", String(16), nullable=False),  # webhook | poll | manual
    Column("triggered_by", String(160), nullable=False),
    Column("job_id", BigInteger, nullable=True),
    Column("worker", String(64), nullable=True),
    Column("digest", String(160), nullable=True),
    Column("error", Text, nullable=True),
    Column("log_size", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_builds_repository", "repository", "id"),
    Index("ix_builds_status", "status"),
)

build_log_chunks = Table(
    "build_log_chunks",
    metadata,
    Column("build_id", BigInteger, ForeignKey("builds.id", ondelete="CASCADE"), primary_key=True),
    Column("start", BigInteger, primary_key=True),  # offset of its first character in the log
    Column("text", Text, nullable=False),
)

# Provider webhook deliveries already acted on, by their delivery id: a replay starts nothing.
build_hook_deliveries = Table(
    "build_hook_deliveries",
    metadata,
    Column("config_id", Integer, ForeignKey("build_configs.id", ondelete="CASCADE"), primary_key=True),
    Column("delivery_id", String(200), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_build_hook_deliveries_received", "received_at"),
)

# A user's star on a repository (meta/search.py): `docker search`'s star_count counts them.
repository_stars = Table(
    "repository_stars",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_repository_stars_user", "user_id"),
)
