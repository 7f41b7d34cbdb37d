"""Settings, read from the environment with the ``HOLDSVC_`` prefix (and a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from holdsvc.identifiers import digest


class Settings(BaseSettings):
    """Every knob of holdsvc; `.env.example` lists each one with its default."""

    model_config = SettingsConfigDict(
        env_prefix="HOLDSVC_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    # Redis: no URL means `holdsvc serve` starts an embedded redis-server.
    redis_url: str | None = None
    redis_cluster: bool = False
    key_prefix: str = Field(default="hs", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    data_dir: Path = Path(".holdsvc")
    appendfsync: Literal["everysec", "always"] = "everysec"
    redis_pool_size: int = Field(default=64, ge=1, le=10_000)
    redis_timeout_seconds: float = Field(default=5.0, gt=0)
    # Script calls share one pipelining connection per worker (one node only; not a cluster).
    redis_pipelining: bool = True
    # Durable confirms: after a confirm, cancel or staff booking, WAIT until this many replicas
    # have the write (0: do not wait); fewer within the timeout answers 503 with the reference.
    confirm_wait_replicas: int = Field(default=0, ge=0, le=100)
    # Milliseconds that WAIT blocks at most (keep it below redis_timeout_seconds).
    confirm_wait_timeout_ms: int = Field(default=1000, ge=1, le=60_000)
    # A Redis whose maxmemory-policy may evict keys (anything but noeviction) loses holds and
    # reservations silently: /ready says 503 on it unless this accepts the risk.
    allow_eviction: bool = False

    # Admin tokens, comma-separated; an entry "sha256:<hex>" is already a digest.
    admin_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Signs hold tokens (so an idempotent retry can hand the same token back without storing it).
    secret_key: SecretStr | None = None

    # Defaults for new venues.
    hold_seconds: int = Field(default=600, ge=1, le=86_400)
    max_hold_seconds: int = Field(default=1800, ge=1, le=604_800)
    max_holds_per_user: int = Field(default=6, ge=1, le=1000)
    # How long ended holds (released, expired, confirmed) are remembered for retries.
    hold_tombstone_seconds: int = Field(default=86_400, ge=60)

    # Background work.
    sweep_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    sweep_batch: int = Field(default=200, ge=1, le=10_000)
    feed_maxlen: int = Field(default=100_000, ge=100)
    # Seconds between passes of the rolling grid (in every worker); at most a minute.
    grid_interval_seconds: float = Field(default=30.0, gt=0, le=60)
    # Change streams (SSE): open at once per process, and the keep-alive comment interval.
    sse_max_streams: int = Field(default=200, ge=1, le=100_000)
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)

    # Webhooks (Standard Webhooks), driven by each venue's change feed.
    # Seconds one delivery (a webhook POST, a mail's SMTP hand-off) may take before it fails.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Delays before each retry of a failed delivery, comma-separated seconds (fractions allowed).
    webhook_retry_schedule: str = Field(
        default="5,300,1800,7200,18000,36000,36000",
        pattern=r"^\s*\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?)*\s*$",
        max_length=1000,
    )
    # Allow webhook URLs on loopback, private and link-local addresses (tests, local receivers).
    webhook_allow_private: bool = False
    # Deliveries (webhooks and mails) one worker process runs at once.
    webhook_concurrency: int = Field(default=16, ge=1, le=1000)
    # Seconds between passes of the delivery loop over the subscribed feeds (in every worker).
    webhook_poll_seconds: float = Field(default=0.5, gt=0, le=3600)

    # E-mail: smtp://[user:password@]host:port (smtps:// for TLS, ?starttls=true); unset: no mail.
    smtp_url: SecretStr | None = None
    mail_from: str | None = None
    # Where the links in mails point (the manage page).
    public_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s]+$")

    # Limits: what one venue may hold, one request may ask for and one answer may carry.
    # Tables of one restaurant (an add beyond it is a 400 and adds none).
    max_tables_per_venue: int = Field(default=200, ge=1, le=100_000)
    # Days one GET .../slots or .../availability may span (POST .../slots: 366, the contract).
    max_query_days: int = Field(default=31, ge=1, le=366)
    # Items per page of a list (venues, reservations, seats): the default and largest `limit`.
    page_size: int = Field(default=1000, ge=1, le=10_000)
    # Table states per page of .../slots and .../availability (slots x tables): 20 000 holds a
    # whole day of 15-minute slots at 200 tables.
    max_cells_per_page: int = Field(default=20_000, ge=100, le=1_000_000)

    # People and HTTP.
    phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    max_body_bytes: int = Field(default=65_536, ge=1024)
    # Requests per minute per client address on the hold endpoints; 0 turns it off (load tests).
    rate_limit_per_minute: int = Field(default=300, ge=0, le=1_000_000)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65_535)
    workers: int = Field(default=1, ge=1, le=64)
    # The HTTP server of `holdsvc serve`; bench/hold_bench.py measures both (uvicorn: faster holds).
    server: Literal["uvicorn", "granian"] = "uvicorn"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # CORS is off unless origins are listed (comma-separated).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("admin_tokens", "cors_origins", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def retry_delays(self) -> tuple[float, ...]:
        """The webhook retry schedule as seconds, one delay per retry."""
        return tuple(float(part) for part in self.webhook_retry_schedule.split(","))

    def admin_token_digests(self) -> frozenset[str]:
        """Digests of the admin tokens; the plain tokens are not kept anywhere else."""
        return frozenset(
            entry.removeprefix("sha256:").lower() if entry.startswith("sha256:") else digest(entry)
            for entry in self.admin_tokens
        )
