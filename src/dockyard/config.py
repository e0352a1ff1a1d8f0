"""One typed settings tree, read from (lowest to highest priority) defaults, a YAML config file,
`DOCKYARD_*` environment variables (nested with `__`, e.g. `DOCKYARD_AUTH__TOKEN_TTL_SECONDS`)
and command-line flags. Unknown keys are errors, so a typo never silently does nothing.
`dockyard check-config` validates a file with this same code.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource


def _networks(value: list[str]) -> list[str]:
    """A list setting of IP addresses or CIDR networks, each checked."""
    for item in value:
        try:
            ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise ValueError(f"expected an IP address or network such as 10.0.0.0/8, got {item!r}") from None
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    listen: str = Field("127.0.0.1:5000", description="Address and port to listen on (HOST:PORT).")
    engine: Literal["granian", "uvicorn"] = Field(
        "granian", description="HTTP server: granian (default, serves blobs from Rust without copying through Python) or uvicorn."
    )
    workers: int = Field(1, ge=1, le=64, description="Worker processes. Keep 1 with SQLite.")
    runtime_threads: int = Field(2, ge=1, le=16, description="granian's I/O threads per worker (Rust side; Python code runs on one).")
    public_url: str | None = Field(
        None, description="Base URL clients use to reach this registry (e.g. https://registry.example.com). "
        "Default: taken from each request's Host header when it is a well-formed HOST[:PORT], else the listen address."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed, e.g. [127.0.0.1, 10.0.0.0/8]. The client is the right-most "
        "forwarded address that is not a trusted proxy. From any other peer these headers are ignored."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    access_log: bool = Field(False, description="Log every request.")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT such as 127.0.0.1:5000, got {value!r}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        return _networks(value)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class DatabaseSettings(_Section):
    url: str | None = Field(
        None, description="SQLAlchemy URL. Default: SQLite at DATA/dockyard.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db."
    )
    pool_size: int = Field(10, ge=1, description="Connections kept open (PostgreSQL).")


class S3Settings(_Section):
    endpoint: str | None = Field(
        None, description="URL of the S3 API with its scheme, e.g. http://127.0.0.1:9000 (Ceph RGW, MinIO), "
        "https://oss-cn-hangzhou.aliyuncs.com (Aliyun OSS), https://cos.ap-guangzhou.myqcloud.com (Tencent COS). "
        "Default: AWS S3 of the region."
    )
    bucket: str = Field("dockyard", min_length=3, max_length=63, description="Bucket (created by `dockyard serve` when it does not exist).")
    region: str = Field("us-east-1", description="Region the requests are signed for.")
    access_key_id: str | None = Field(None, description="Access key id. Default: the usual AWS sources (environment, profile, instance role).")
    secret_access_key: SecretStr | None = Field(None, description="Secret access key.")
    path_style: bool = Field(False, description="Path-style addressing (ENDPOINT/BUCKET/KEY) instead of virtual hosts; "
                             "needed by Ceph RGW and MinIO without wildcard DNS.")
    prefix: str = Field("", description="Key prefix of everything Dockyard writes in the bucket, e.g. `registry/`.")
    part_size_mib: int = Field(8, ge=5, le=512, description="Size of multipart-upload parts (S3's minimum is 5 MiB).")
    presign_ttl_seconds: int = Field(900, ge=60, le=7 * 86400, description="Lifetime of the presigned URLs of `storage.redirect`.")

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected a URL with its scheme, such as http://127.0.0.1:9000, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        value = value.strip("/")
        return f"{value}/" if value else ""


class StorageSettings(_Section):
    driver: Literal["fs", "s3"] = Field("fs", description="Blob store: fs (local disk) or s3 (an S3-compatible object store; "
                                        "what several nodes share).")
    root: Path | None = Field(None, description="Blob store directory (fs). Default: DATA/blobs.")
    fsync: bool = Field(True, description="fsync blobs before they become visible (crash safety; fs).")
    redirect: bool = Field(False, description="Answer blob GETs with a 307 to a presigned URL of the object store (s3) "
                           "instead of streaming the bytes through this node.")
    cache_gib: float = Field(20.0, ge=0, description="Size of this node's local copy of hot blobs read from a shared store "
                             "(s3): pulls of a blob this node served before come from its own disk. 0: no copy.")
    cache_dir: Path | None = Field(None, description="Directory of that copy. Default: DATA/blob-cache.")
    s3: S3Settings = S3Settings()


class AuthSettings(_Section):
    service: str = Field("dockyard", description="Token service name (the `service` of the Bearer challenge).")
    issuer: str = Field("dockyard", description="Issuer (`iss`) of the tokens this registry signs.")
    realm: str | None = Field(None, description="Token endpoint URL in the challenge. Default: PUBLIC_URL/auth/token.")
    token_ttl_seconds: int = Field(300, ge=30, le=86400, description="Lifetime of a registry access token.")
    refresh_ttl_seconds: int = Field(30 * 86400, ge=60, description="Lifetime of an OAuth2 refresh token.")
    basic_on_registry: bool = Field(True, description="Accept Basic credentials sent straight to /v2/.")
    account_password_for_registry: bool = Field(
        True, description="Accept a user's account password for `docker login` too, besides the fixed registry "
        "password, temporary passwords and robot secrets."
    )
    temp_password_ttl_seconds: int = Field(3600, ge=60, le=30 * 86400, description="Default lifetime of a temporary password.")
    signing_key_file: Path | None = Field(
        None, description="PEM file of the EC P-256 key that signs tokens; written there when the file does not exist yet. "
        "Nodes that serve one registry must share it. Default: DATA/keys/token-signing.pem."
    )
    secrets_key_file: Path | None = Field(
        None, description="File of the 256-bit key that encrypts secrets the registry must read back (webhook "
        "signing secrets); written there when the file does not exist yet. Nodes that serve one registry must share "
        "it, and losing it makes those secrets unreadable. Default: DATA/keys/secrets.key."
    )


class UploadSettings(_Section):
    purge_after_seconds: int = Field(86400, ge=60, description="Abandoned upload sessions older than this are purged.")
    purge_interval_seconds: int = Field(3600, ge=0, description="How often to purge them (0: never in the background).")
    chunk_min_length: int = Field(0, ge=0, description="OCI-Chunk-Min-Length advertised to clients (0: none).")


class GcSettings(_Section):
    interval_seconds: int = Field(86400, ge=0, description="Background garbage collection period (0: off).")
    delete_untagged: bool = Field(False, description="Also remove manifests that no tag, index or subject keeps.")
    grace_seconds: int = Field(3600, ge=0, description="Never remove blobs or manifests younger than this.")
    batch_size: int = Field(500, ge=1, le=1000, description="Blobs re-checked and deleted per transaction (and per "
                            "S3 DeleteObjects call).")


class JobSettings(_Section):
    embedded_worker: bool = Field(True, description="Run a job worker inside each `dockyard serve` process "
                                  "(GC, purges, scans…); false when `dockyard worker` processes do the work.")
    concurrency: int = Field(2, ge=1, le=64, description="Jobs a worker runs at once.")
    lease_seconds: int = Field(60, ge=5, le=3600, description="A job whose worker stops renewing for this long "
                               "(it died) goes back to the queue.")
    poll_seconds: float = Field(2.0, gt=0, le=60, description="How often an idle worker looks for jobs when nothing "
                                "woke it (PostgreSQL's LISTEN/NOTIFY and this process's own jobs wake it at once).")
    grace_seconds: int = Field(30, ge=0, le=3600, description="On stop (SIGTERM), how long running jobs may finish "
                               "before they are handed back to the queue.")
    retention_seconds: int = Field(7 * 86400, ge=60, description="How long finished jobs stay listed.")
    labels: dict[str, str] = Field(default_factory=dict, description="This node's worker labels, e.g. "
                                   "{region: overseas}: a build rule with `worker_labels` runs only on workers that "
                                   "have them (`dockyard worker --labels region=overseas` sets them too).")


class ScanSettings(_Section):
    enabled: bool = Field(True, description="Scan images (on push when a namespace asks for it, on demand, and "
                          "again when the advisory database changes).")
    db_path: Path | None = Field(None, description="The advisory database file that `dockyard vulndb import|update` "
                                 "writes and scans read. Default: DATA_DIR/vulndb/advisories.sqlite.")
    max_layer_bytes: int = Field(8 << 30, ge=1 << 20, description="A layer that expands past this many bytes ends its "
                                 "scan `failed` (a tar or zip bomb).")
    max_file_bytes: int = Field(64 << 20, ge=1 << 16, description="Largest single file (package database, binary, "
                                "archive) read from a layer; bigger ones are skipped and listed in the scan's notes.")
    sbom: bool = Field(True, description="Push CycloneDX and SPDX SBOMs as referrers of each scanned image.")
    feeds: dict[str, str] = Field(default_factory=dict, description="`dockyard vulndb update`: source name → URL of "
                                  "an archive (.tar.gz or .zip) of that feed; empty: the public feeds listed in the README.")


class BuildSettings(_Section):
    enabled: bool = Field(True, description="Run automated builds (`buildah`) on this node's workers; false: this "
                          "node's workers take no build, builds wait for a node that does.")
    concurrency: int = Field(1, ge=1, le=16, description="Builds a node runs at once (besides its other jobs).")
    timeout_seconds: int = Field(3600, ge=10, le=86400, description="A build running longer is stopped (every "
                                 "process of it killed) and marked failed; a build configuration may set less.")
    workdir: Path | None = Field(None, description="Where builds clone sources and keep each repository's layer "
                                 "cache. Default: DATA_DIR/builds, or with a build user (run_as) that user's "
                                 "~/dockyard-builds/<id of this data directory>.")
    buildah: str = Field("buildah", description="The buildah program.")
    isolation: str = Field("chroot", pattern="^(chroot|oci|rootless)$", description="buildah's isolation of RUN steps "
                           "(README: what each gives).")
    run_as: str = Field("auto", min_length=1, max_length=64, description="The system user git and buildah run as. "
                        "auto: `dockyard-builder` when Dockyard runs as root and that user has ranges in /etc/subuid and "
                        "/etc/subgid (buildah then runs rootless: RUN steps in a user namespace), else Dockyard's own "
                        "user; a user name: that user; self: Dockyard's own user.")
    memory_mib: int = Field(4096, ge=64, description="Memory limit of all of a build's processes together: a cgroup's, "
                            "where the host lets Dockyard create cgroups (else not enforced; see the README).")
    cpus: float = Field(1.0, ge=0, description="CPU time a build may use, as a number of CPUs (a cgroup's CPU quota, "
                        "where the host lets Dockyard create cgroups); 0: no limit.")
    max_file_gib: float = Field(20.0, gt=0, description="Largest file a build may write (RLIMIT_FSIZE).")
    min_free_gib: float = Field(2.0, ge=0, description="A build is stopped and failed when the file system of the "
                                "layer caches has less free space than this (what RUN steps write goes there).")
    max_log_bytes: int = Field(4 << 20, ge=4096, description="A build's log is cut after this much.")
    max_workspace_gib: float = Field(20.0, gt=0, description="A build whose work directory (the clone, temporary "
                                     "files) grows past this is stopped and failed.")
    poll_seconds: int = Field(30, ge=5, description="How often configurations with polling are looked at.")
    retention_days: int = Field(90, ge=1, description="Finished builds (and their logs) older than this are "
                                "forgotten; the images they pushed stay.")


class OutboundSettings(_Section):
    allowed_networks: list[str] = Field(
        default_factory=list, description="Networks (CIDR) that requests the registry makes for users (webhooks, clone URLs) may "
        "reach although they are loopback, private, link-local, CGNAT or otherwise not public, e.g. [10.20.0.0/16] "
        "for deployers on the internal network. Empty: only public addresses."
    )
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="Time limit of each step of such a request "
                                   "(connecting, sending, waiting for each part of the answer); an answer still "
                                   "arriving after twice this is cut short.")

    @field_validator("allowed_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        return _networks(value)


class LimitSettings(_Section):
    manifest_max_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Largest manifest accepted.")
    page_size_max: int = Field(10000, ge=1, description="Largest `n` for tags/list and _catalog.")


class RegionSettings(_Section):
    name: str = Field(description="Region id, e.g. cn-hangzhou.", min_length=1, max_length=64)
    label: str | None = Field(None, description="Name shown in the console, e.g. China (Hangzhou).")
    public: str | None = Field(None, description="HOST[:PORT] clients reach over the internet.")
    vpc: str | None = Field(None, description="HOST[:PORT] clients reach from inside the VPC.")
    internal: str | None = Field(None, description="HOST[:PORT] for the region's own services (classic network).")

    @field_validator("public", "vpc", "internal")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or any(c.isspace() for c in value)):
            raise ValueError(f"expected HOST or HOST:PORT without a scheme or path, got {value!r}")
        return value


class ConsoleSettings(_Section):
    enabled: bool = Field(True, description="Serve the web console at / (/console/).")
    session_ttl_seconds: int = Field(12 * 3600, ge=300, le=30 * 86400, description="How long a console login lasts.")
    secure_cookies: Literal["auto", "always", "never"] = Field(
        "auto", description="Mark the session cookie Secure: auto (when the request came over HTTPS), always or never."
    )
    default_language: Literal["en", "zh-CN"] | None = Field(
        None, description="Console language before a user picks one: en or zh-CN. Default: from the browser's Accept-Language."
    )


class Settings(BaseSettings):
    """The whole configuration. Each section is documented in the README."""

    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(Path("./data"), description="Data directory: database, blobs, uploads, keys.")
    admin_password: SecretStr | None = Field(
        None, description="Password of the `admin` user created on first start (generated and printed if unset)."
    )
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    auth: AuthSettings = AuthSettings()
    uploads: UploadSettings = UploadSettings()
    gc: GcSettings = GcSettings()
    jobs: JobSettings = JobSettings()
    limits: LimitSettings = LimitSettings()
    scan: ScanSettings = ScanSettings()
    outbound: OutboundSettings = OutboundSettings()
    builds: BuildSettings = BuildSettings()
    console: ConsoleSettings = ConsoleSettings()
    regions: list[RegionSettings] = Field(
        default_factory=list, description="Registry addresses shown in the console, one entry per region, each with "
        "its public, VPC and internal HOST[:PORT]. Default: one region whose public address is server.public_url's "
        "host, else the listen address (else the browser's Host when listening on all interfaces)."
    )

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.data_dir / 'dockyard.db').resolve()}"

    @property
    def blob_root(self) -> Path:
        return (self.storage.root or self.data_dir / "blobs").resolve()

    @property
    def upload_root(self) -> Path:
        return (self.data_dir / "uploads").resolve()

    @property
    def base_url(self) -> str:
        """This registry's URL in links it hands out (webhook payloads, pull-policy messages):
        server.public_url, else http://LISTEN."""
        return (self.server.public_url or f"http://{self.server.listen}").rstrip("/")

    @property
    def vulndb_path(self) -> Path:
        return (self.scan.db_path or self.data_dir / "vulndb" / "advisories.sqlite").resolve()

    @property
    def build_root(self) -> Path:
        return (self.builds.workdir or self.data_dir / "builds").resolve()

    @property
    def key_path(self) -> Path:
        return (self.auth.signing_key_file or self.data_dir / "keys" / "token-signing.pem").resolve()

    @property
    def secrets_key_path(self) -> Path:
        return (self.auth.secrets_key_file or self.data_dir / "keys" / "secrets.key").resolve()


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults < config file < environment < `overrides` (CLI flags).

    Raises pydantic.ValidationError (or OSError / yaml.YAMLError for an unreadable file).
    """
    if config_file is not None and not Path(config_file).is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": config_file})

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if config_file is not None:
                sources.append(YamlConfigSettingsSource(settings_cls))
            return tuple(sources)

    loaded = _FromFile(**overrides)
    return Settings.model_validate(loaded.model_dump())


def settings_to_json(settings: Settings) -> str:
    """Serialise fully resolved settings (secrets included) for a worker process."""
    data = settings.model_dump(mode="json")
    if settings.admin_password is not None:
        data["admin_password"] = settings.admin_password.get_secret_value()
    if settings.storage.s3.secret_access_key is not None:
        data["storage"]["s3"]["secret_access_key"] = settings.storage.s3.secret_access_key.get_secret_value()
    import json

    return json.dumps(data)


def settings_from_json(text: str) -> Settings:
    return Settings.model_validate_json(text)
