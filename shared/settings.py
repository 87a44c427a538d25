"""One typed settings object, read from ``GENTRAIN_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings. Defaults are the embedded mode: everything under one data directory."""

    model_config = SettingsConfigDict(env_prefix="GENTRAIN_", extra="ignore")

    data_dir: Path = Field(default=Path("gentrain-data"))
    # Empty means "derive the embedded default from data_dir".
    database_url: str = ""
    broker_url: str = ""
    # S3: setting a bucket switches object storage from the local directory to S3.
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    # The endpoint that users' clients can reach, for presigned links (defaults to s3_endpoint_url).
    s3_public_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    presign_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # Where the CLI's client commands send their requests.
    api_url: str = ""

    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Ceiling on the decompressed size of an uploaded .npz (a zip bomb stops here).
    max_dataset_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    # How often the filesystem broker looks for new messages, in seconds.
    broker_polling_interval: float = Field(default=0.1, gt=0, le=10)

    # API keys: "auto" requires them unless the API binds to loopback only; "required"; "off"
    # (refused unless bound to loopback).
    auth: Literal["auto", "required", "off"] = "auto"
    submit_rate_per_minute: int = Field(default=60, ge=1, le=100_000)
    # An API process remembers a verified key this long, so a client polling a job does not cost
    # a key lookup per request; a revoked key stops working within this time. 0: no caching.
    api_key_cache_seconds: float = Field(default=10.0, ge=0, le=300)

    # Reliability: a running job's worker writes a heartbeat this often; the reaper re-queues a
    # job whose heartbeat is older than the timeout, and re-sends a queued job nobody took.
    heartbeat_seconds: float = Field(default=10.0, gt=0, le=3600)
    heartbeat_timeout_seconds: float = Field(default=60.0, gt=0, le=86_400)
    requeue_after_seconds: float = Field(default=60.0, gt=0, le=86_400)
    reaper_interval_seconds: float = Field(default=10.0, gt=0, le=3600)
    max_attempts: int = Field(default=3, ge=1, le=100)
    # A job's max_runtime_seconds defaults to the first and may not exceed the second.
    default_max_runtime_seconds: int = Field(default=24 * 3600, ge=1)
    max_runtime_cap_seconds: int = Field(default=7 * 24 * 3600, ge=1)

    # Request and output limits (issue 10)
    # A JSON request body (submit, sample) above this many bytes is a 413 before it is parsed;
    # uploads keep max_upload_bytes. Nesting deeper than max_json_depth is a 400.
    max_json_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_json_depth: int = Field(default=32, ge=4, le=500)
    # Sampling requests a minute per owner (429 with Retry-After), as submit_rate_per_minute.
    sample_rate_per_minute: int = Field(default=60, ge=1, le=100_000)
    # Queued, running and cancelling jobs (training and sampling) per owner: a 429 above it.
    max_active_jobs_per_owner: int = Field(default=100, ge=1, le=1_000_000)
    # The job view shows this many newest artifacts; GET /v1/jobs/<id>/artifacts pages the rest.
    job_view_artifacts: int = Field(default=50, ge=1, le=1000)
    # Most rows a page of GET /v1/jobs/<id>/metrics (or /artifacts) may ask for.
    max_page_size: int = Field(default=1000, ge=10, le=100_000)

    # Serving and keys (issue 10)
    # A connection must deliver its request line and headers within this many seconds of opening
    # (or of its previous response); a connection that moves no byte for client_idle_timeout
    # seconds (a stalled body, a client that stops reading) is closed. Each API process serves at
    # most api_connections connections at once (gevent: a slow one costs a greenlet, not a worker).
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    client_idle_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    api_connections: int = Field(default=1000, ge=10, le=100_000)
    # The base URL clients reach the API at (e.g. https://gentrain.example.com), for the links the
    # API returns; empty: the request's own host on loopback without keys, else root-relative.
    public_url: str = ""

    # Upload limits (issue 10)
    # An uploaded .npz may hold at most max_dataset_members arrays (each of x_train, y_train,
    # x_test, y_test once) and declare at most max_dataset_elements elements in all (the
    # decompressed bytes are max_dataset_bytes above); both checked before anything is unpacked,
    # so a small upload cannot make the API or a worker hold gigabytes (Keras's MNIST: 55 M).
    max_dataset_members: int = Field(default=4, ge=1, le=4)
    max_dataset_elements: int = Field(default=100_000_000, ge=1000)
    # Per owner: datasets stored and their bytes (as uploaded); over either, an upload is a 409.
    max_datasets_per_owner: int = Field(default=100, ge=1)
    max_dataset_bytes_per_owner: int = Field(default=4 * 1024 * 1024 * 1024, ge=1024)

    # Retention and quotas (issue 13). The reaper removes the artifacts of jobs that ended more
    # than retain_days ago (the row, metrics and history stay, marked expired; 0: keep forever).
    # An owner's datasets and job artifacts together may take owner_quota_bytes (0: no limit):
    # an upload that would go over, or a job submitted once at it, is a 409 quota_exceeded.
    retain_days: float = Field(default=0, ge=0, le=100_000)
    owner_quota_bytes: int = Field(default=0, ge=0)
    # Jobs the reaper sweeps (superseded attempts' objects) or expires in one pass.
    retention_batch: int = Field(default=100, ge=1, le=100_000)

    # Job logs (issue 11): a job's stored log (every attempt, in characters) stops at this cap
    # with one truncation notice; the worker stores what a job prints in chunks this often.
    max_log_bytes_per_job: int = Field(default=1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    log_flush_seconds: float = Field(default=1.0, gt=0, le=60)

    # Event streams (issue 11): without Redis pub/sub (the embedded mode) an API process looks for
    # new change-log entries this often while a stream is open; a stream sends a keep-alive
    # comment when it has sent nothing for event_keepalive_seconds.
    event_poll_seconds: float = Field(default=0.5, ge=0.05, le=30)
    event_keepalive_seconds: float = Field(default=15.0, ge=0.5, le=300)

    # Dashboard sign-in (issue 12): a session made from an API key lasts this long (the cookie
    # and the server's row both end then; revoking the key ends it at once).
    ui_session_seconds: int = Field(default=12 * 3600, ge=60, le=30 * 86_400)

    # Priorities and logs (issue 13): a job's priority is 0-9 (default 5); above
    # max_priority_without_admin only an admin key may submit. log_format "json" makes every
    # process log one JSON object a line (time, level, role, logger, message, request and job ids).
    max_priority_without_admin: int = Field(default=7, ge=0, le=9)
    log_format: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir.resolve() / 'gentrain.db'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if not self.api_url:
            self.api_url = f"http://{self.api_host}:{self.api_port}"
        return self

    @property
    def storage_dir(self) -> Path:
        """Root of the local object store (used when no S3 bucket is set)."""
        return self.data_dir.resolve() / "objects"

    @property
    def broker_dir(self) -> Path:
        """Message folder of the filesystem broker (embedded mode)."""
        return self.data_dir.resolve() / "broker"

    @property
    def uses_s3(self) -> bool:
        """Whether artifacts live in S3 rather than the local directory."""
        return bool(self.s3_bucket)

    @property
    def loopback_only(self) -> bool:
        """Whether the API binds to a loopback address only."""
        return self.api_host in ("127.0.0.1", "localhost", "::1") or self.api_host.startswith(
            "127."
        )

    @property
    def auth_required(self) -> bool:
        """Whether every API request must carry a valid key."""
        if self.auth == "auto":
            return not self.loopback_only
        return self.auth == "required"

    @property
    def is_embedded(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
