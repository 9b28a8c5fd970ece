"""Configuration: defaults < TOML file (--config) < environment (POSTROOM_<OPTION>) < command line.

Every option is listed once in OPTIONS with its type, default and help; the CLI, the
environment reader and the README are generated from or checked against this table.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from postroom.core.errors import ConfigError, InvalidInput
from postroom.core.reputation import parse_rates

ROLES = ("smtp", "http", "delivery")
"""The roles of `postroom serve --roles` (app.py opens each role's parts)."""


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, option: str) -> HostPort:
        match = re.fullmatch(r"\[?([^\]]*?)\]?:(\d{1,5})", text.strip())
        if not match or not 0 <= int(match.group(2)) <= 65535:
            raise ConfigError(f"{option}: expected HOST:PORT, got {text!r}")
        return cls(match.group(1) or "0.0.0.0", int(match.group(2)))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$")
_DURATION = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_size(text: str, option: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"{option}: expected a size like 40MB or 512KB, got {text!r}")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def parse_duration(text: str, option: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{option}: expected a duration like 30s, 5m, 12h or 7d, got {text!r}")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2).lower()]
    return float(match.group(1)) * unit


def parse_bool(text: str, option: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{option}: expected true or false, got {text!r}")


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path = Path("postroom-data")
    database_url: str = ""
    writer_process: bool = True
    smtp: HostPort = HostPort("127.0.0.1", 1025)
    http: HostPort = HostPort("127.0.0.1", 8025)
    hostname: str = "postroom.localhost"
    smtp_tls: bool = False
    smtp_require_tls: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    smtp_bare_line_endings: str = "accept"
    max_message_size: int = 40 * 1024 * 1024
    smtp_memory_budget: int = 256 * 1024 * 1024
    smtp_spool_threshold: int = 1024 * 1024
    max_recipients: int = 1000
    max_line_length: int = 1000
    max_errors: int = 10
    max_connections: int = 1000
    max_connections_per_ip: int = 100
    command_timeout: float = 300.0
    data_timeout: float = 180.0
    data_min_rate: int = 1024
    smtp_session_lifetime: float = 3600.0
    max_messages: int = 0
    max_age: float = 0.0
    prune_interval: float = 60.0
    block_summaries_interval: float = 60.0
    log_level: str = "info"
    log_format: str = "text"
    resolver: str = ""
    submission: HostPort | None = None
    submissions: HostPort | None = None
    ses: HostPort | None = None
    ses_prefix: str = ""
    max_templates: int = 10_000  # per project, as SES's email templates per account
    max_identities: int = 10_000  # per project: domains and addresses, as SES's
    mx: HostPort | None = None
    submission_allow_insecure_auth: bool = False
    submission_auth_max_failures: int = 5
    submission_auth_window: float = 300.0
    domain_check_interval: float = 600.0
    session_idle_timeout: float = 12 * 3600.0
    session_lifetime: float = 7 * 86400.0
    secure_cookies: bool = False
    login_max_failures: int = 10
    login_failure_window: float = 300.0
    delivery: bool = True
    roles: tuple[str, ...] = ROLES
    relay: str = ""
    routes: str = ""
    delivery_tls: str = "opportunistic"
    delivery_tls_policy: str = ""
    mta_sts: bool = True
    tls_rpt: bool = True
    delivery_concurrency: int = 20
    delivery_lease: float = 600.0
    delivery_poll_interval: float = 10.0
    delivery_stop_timeout: float = 30.0
    delivery_allow_private: bool = False
    webhooks: bool = True
    webhook_allow_private: bool = False
    webhook_timeout: float = 10.0
    delivery_mx_port: int = 25
    ip_pools: str = ""
    default_ip_pool: str = ""
    queue_lifetime: float = 5 * 86400.0
    verp: bool = True
    delay_notice_after: float = 4 * 3600.0
    release_allowed_recipients: str = ""
    bounce_domain: str = ""
    public_url: str = ""
    allowed_hosts: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    system_sender: str = ""
    address_token_lifetime: float = 86400.0
    suppression_soft_bounces: int = 3
    suppression_soft_window: float = 7 * 86400.0
    suppression_soft_expiry: float = 30 * 86400.0
    suppression_account_reasons: tuple[str, ...] = ()
    reputation_bounce_rates: tuple[str, ...] = ("5%", "10%")
    reputation_complaint_rates: tuple[str, ...] = ("0.1%", "0.5%")
    reputation_min_volume: int = 200
    reputation_window: float = 7 * 86400.0
    reputation_check_interval: float = 60.0
    html_check_data: str = ""
    enable_chaos: bool = False
    capture_route: tuple[str, ...] = ()
    spamassassin: str = ""
    chromium: str = ""
    link_check_allow_private: bool = False
    link_check_timeout: float = 5.0


# option name -> help text. Types and defaults come from Config.
HELP: dict[str, str] = {
    "data_dir": "Directory for the SQLite database, generated TLS pairs and other state.",
    "database_url": "postgresql://user@host/db to use PostgreSQL instead of SQLite in data_dir.",
    "writer_process": "Commit new messages in a child process (own GIL); off: a writer thread.",
    "smtp": "Capture SMTP listener HOST:PORT (never relays; any sender, recipient, credentials).",
    "http": "HTTP listener HOST:PORT for the web UI and the API.",
    "hostname": "Name this server uses in its SMTP greeting and Received: headers.",
    "smtp_tls": "Offer STARTTLS on the capture door (self-signed pair generated if none given).",
    "smtp_require_tls": "Refuse MAIL on the capture door until STARTTLS (implies smtp_tls).",
    "tls_cert": "PEM certificate chain for STARTTLS.",
    "tls_key": "PEM private key for STARTTLS.",
    "smtp_bare_line_endings": "accept (normalise and tag the message) or reject (550 5.6.11).",
    "max_message_size": "Largest message accepted (SIZE), e.g. 40MB.",
    "smtp_memory_budget": "Message data all SMTP sessions may hold in memory at once, e.g. "
    "256MB; while it is spent a new DATA or BDAT gets 452 4.3.1 (the client retries later).",
    "smtp_spool_threshold": "A message being received goes from memory to a file in "
    "data_dir/spool once it is larger than this, e.g. 1MB (0 = every message over 64 KiB).",
    "max_recipients": "Most recipients per message; more get 452 4.5.3.",
    "max_line_length": "Longest text line in a message, in octets (0 = no limit).",
    "max_errors": "Protocol errors per session before 421 and close.",
    "max_connections": "Concurrent SMTP connections per listener.",
    "max_connections_per_ip": "Concurrent SMTP connections per client (IPv4 address, IPv6 /64).",
    "command_timeout": "Time to send one whole SMTP command, from the server's prompt, e.g. 5m.",
    "data_timeout": "Longest silence inside a DATA or BDAT block, e.g. 3m; also the time a "
    "block gets before data_min_rate applies.",
    "data_min_rate": "Octets per second a DATA or BDAT block must average once it is "
    "data_timeout old, e.g. 1KB (0 = no minimum).",
    "smtp_session_lifetime": "An SMTP connection is closed (421) this long after it opened, "
    "e.g. 1h (0 = no limit).",
    "max_messages": "Keep at most this many messages (0 = no limit); oldest pruned first.",
    "max_age": "Delete messages older than this, e.g. 7d (0 = keep forever).",
    "prune_interval": "How often retention runs, e.g. 60s.",
    "block_summaries_interval": "PostgreSQL: how often a child process summarises the new "
    "full blocks of 1,024 messages for searches of 1-2 characters, e.g. 60s (0 = never).",
    "log_level": "debug, info, warning or error.",
    "log_format": "text or json.",
    "resolver": "DNS server HOST[:PORT] for domain checks and MX lookups (default: the system's).",
    "submission": "Submission listener HOST:PORT, STARTTLS and AUTH (RFC 6409; 587); off if unset.",
    "submissions": "Submission listener HOST:PORT with implicit TLS (RFC 8314; 465). Off if unset.",
    "mx": "Inbound MX listener HOST:PORT (25 in production): bounces and complaints to VERP "
    "return paths, mail for the projects' verified domains; every other recipient is refused "
    "(550 5.7.1). STARTTLS with --tls-cert. Off if unset.",
    "ses": "SES-compatible API listener HOST:PORT (AWS SigV4 with per-project SES access keys; "
    "point an AWS SDK's endpoint_url at it). Off if unset.",
    "ses_prefix": "Serve the SES-compatible API on the HTTP listener under this path too, e.g. "
    "/ses (an SDK's endpoint_url is then http://HOST:PORT/ses). Off if unset.",
    "submission_allow_insecure_auth": "Allow AUTH on the submission door before STARTTLS.",
    "max_templates": "Email templates a project may have (SES: 10,000); creating one more is "
    "refused (SES LimitExceededException, HTTP 400 on /api/v2).",
    "max_identities": "Sending identities (domains and addresses together) a project may have "
    "(SES: 10,000); adding one more is refused (SES LimitExceededException, HTTP 400 on /api/v2).",
    "submission_auth_max_failures": "Failed AUTH per client IP in the window before throttling "
    "(0 = never throttle).",
    "submission_auth_window": "The window of submission_auth_max_failures, e.g. 5m.",
    "domain_check_interval": "How often unverified sending domains are checked in DNS again "
    "(verified ones 24 times less often), e.g. 10m; 0 = never.",
    "session_idle_timeout": "A web login ends after this long without a request, e.g. 12h.",
    "session_lifetime": "A web login ends this long after it began, whatever its use, e.g. 7d.",
    "secure_cookies": "Always mark login cookies Secure (else only when the request came over "
    "HTTPS, X-Forwarded-Proto from a proxy on 127.0.0.1 included).",
    "login_max_failures": "Failed web logins per client IP in the window before further "
    "attempts are refused (0 = never).",
    "login_failure_window": "The window of login_max_failures, e.g. 5m.",
    "roles": "What this process does, comma-separated: smtp (the SMTP doors: capture, "
    "submission, MX), http (web UI, APIs, SES API, and the housekeeping jobs: retention, domain "
    "checks, suppression feed, reputation guard), delivery (the outbound MTA). Several "
    "processes with their roles can share one PostgreSQL database.",
    "delivery": "Deliver live projects' queued mail from this process (off: accept and queue "
    "only, e.g. when other processes on the same database deliver).",
    "relay": "Send all outbound mail through this relay (smarthost): smtp://user:pass@host:587 "
    "(STARTTLS required), smtps://... (implicit TLS), smtp+plain://... (no TLS); "
    "?verify=no skips the certificate check.",
    "routes": "Per-domain next hops, comma-separated DOMAIN=URL (URLs as for relay), e.g. "
    "example.internal=smtp+plain://10.0.0.5:25.",
    "delivery_tls": "TLS to MX hosts: opportunistic (STARTTLS when offered, any certificate, "
    "in the clear when it fails), required (STARTTLS, any certificate), verify (STARTTLS and a "
    "certificate valid for the MX host name), or none.",
    "delivery_tls_policy": "Per recipient domain TLS, comma-separated DOMAIN=MODE (modes as "
    "for delivery_tls), e.g. bank.example=verify,legacy.example=opportunistic; MX delivery only "
    "(a relay's URL says its TLS).",
    "mta_sts": "Apply the MTA-STS policies (RFC 8461) of recipient domains that publish one: "
    "fetched over HTTPS, cached in the database; enforce: only the listed MX hosts, with a "
    "verified certificate, else the recipient is deferred; testing: failures recorded only.",
    "tls_rpt": "Count the TLS outcome of every connection to recipient domains that publish a "
    "TLS-RPT record (RFC 8460), per day, for their reports (GET /api/v2/tls-reports).",
    "delivery_concurrency": "Deliveries (message and domain) in progress at once.",
    "delivery_lease": "How long a delivering process holds the queue entries it claimed (a "
    "batch of up to 200) before another process may take them over, e.g. 10m: after a crash "
    "its entries wait this long. Keep it well above the time a batch takes.",
    "delivery_poll_interval": "How often the delivery worker reads the queue's due times "
    "from the database, e.g. 10s: a safety read for entries queued by other processes on the "
    "same database (this process's own are claimed at once, deferrals when due, without "
    "reading) and for leases of dead processes that ran out.",
    "delivery_stop_timeout": "When the server stops (SIGTERM), how long deliveries in progress "
    "may take to finish, e.g. 30s; then they are cut and their entries given back untried.",
    "webhooks": "Send the projects' webhook requests from this process (off: only queue them, "
    "e.g. when other processes on the same database send them).",
    "webhook_allow_private": "Allow webhook URLs on loopback, private and reserved addresses "
    "(receivers on this machine or an intranet); otherwise refused, so that a project's "
    "manager cannot make the server probe internal networks.",
    "webhook_timeout": "The longest one webhook request may take (connection to last byte), "
    "e.g. 10s.",
    "delivery_allow_private": "Allow MX hosts on loopback and private networks (testing, "
    "intranets); otherwise such destinations fail with 5.4.4.",
    "delivery_mx_port": "Port of MX hosts (25; another only for testing).",
    "ip_pools": "Named sets of local source addresses with their EHLO names, e.g. "
    "'dedicated=192.0.2.10/mail1.example.com 192.0.2.11/mail2.example.com; shared=192.0.2.20' "
    "(no /NAME: the hostname option); a project delivers from the pool its ip_pool setting "
    "names.",
    "default_ip_pool": "The IP pool of projects that name none (default: no pool, the "
    "system's source address).",
    "suppression_soft_bounces": "Soft bounces (failures that are not hard, expiries) of one "
    "recipient within --suppression-soft-window that put it on its project's suppression list; "
    "0: never.",
    "suppression_soft_window": "The window --suppression-soft-bounces are counted in, e.g. 7d.",
    "suppression_soft_expiry": "How long an entry added for soft bounces lasts, e.g. 30d; 0: "
    "forever.",
    "reputation_bounce_rates": "Hard-bounce rates (per recipient sent, over --reputation-window) "
    "at which a live project is warned and paused, WARN,PAUSE, e.g. 5%,10%.",
    "reputation_complaint_rates": "Complaint rates at which a live project is warned and paused, "
    "WARN,PAUSE, e.g. 0.1%,0.5%.",
    "reputation_min_volume": "Recipients sent within --reputation-window before the rates count.",
    "reputation_window": "The rolling window the reputation guard judges, e.g. 7d.",
    "reputation_check_interval": "How often the reputation guard judges the projects, e.g. 60s; "
    "0: never (no warnings, no pauses).",
    "suppression_account_reasons": "Reasons (bounce, complaint; comma-separated) whose automatic "
    "suppression entries go on the account-wide list, so they hold for every project (like SES's "
    "account-level list); the others stay on the project's list. Default: none.",
    "queue_lifetime": "How long a recipient is retried before it fails as expired (5.4.7), "
    "e.g. 5d.",
    "release_allowed_recipients": "A regular expression every recipient of a release (Mailpit's "
    "POST /api/v1/message/ID/release through --relay) must match; default: any address.",
    "delay_notice_after": "How long a recipient is deferred before its sender gets one notice "
    "of delay (RFC 3464), e.g. 4h; 0 = never.",
    "verp": "Give each recipient's delivery its own return path bounces+TOKEN@BOUNCE-DOMAIN "
    "(VERP), so that asynchronous bounces map back to message and recipient; off: the "
    "sender's envelope address.",
    "bounce_domain": "The return-path domain of every project's mail (its MX must point here); "
    "default: rp.DOMAIN of the sender's verified sending domain (no VERP for other senders).",
    "public_url": "The URL people use to reach the web UI and API, e.g. https://mail.example.com "
    "(its host name is accepted in the Host header).",
    "allowed_hosts": "More names the HTTP listener answers to, comma-separated: host names, "
    "*.suffix wildcards, IP addresses or networks (loopback names are always accepted; any "
    "other Host gets 421).",
    "trusted_proxies": "Reverse proxies (IP addresses or networks, comma-separated) whose "
    "X-Forwarded-For and X-Forwarded-Proto are believed; nobody's by default.",
    "system_sender": "Sender (envelope and From) of Postroom's own mail, the address "
    "verification mails (default: postroom@ the hostname option).",
    "html_check_data": "A mail client support table for the HTML check (the format of the "
    "shipped postroom/checks/html_support.txt) to use instead of the shipped one.",
    "capture_route": "A capture route, repeatable: user:PATTERN=PROJECT (by SMTP user name) or "
    "rcpt:PATTERN=PROJECT (by recipient), e.g. rcpt:*@team-a.test=team-a; PATTERN is a "
    "wildcard (* ?), PROJECT an existing capture project. Mail of the capture door that "
    "matches goes into that project instead of the default one.",
    "enable_chaos": "Allow Chaos (/api/v1/chaos): errors injected into the capture door on "
    "purpose, per project, stage and probability.",
    "spamassassin": "SpamAssassin's spamd HOST:PORT for the spam check "
    "(/api/v1/message/ID/sa-check); off if unset.",
    "chromium": "Chromium (or Chrome) binary for message screenshots "
    "(/api/v1/message/ID/screenshot.png); default: chromium, chromium-browser or google-chrome "
    "found on PATH; off: no screenshots.",
    "link_check_allow_private": "Let the link check request loopback, private and other "
    "non-public addresses (testing on one machine or an intranet); off: such links are refused.",
    "link_check_timeout": "Time one request of the link check may take, e.g. 5s.",
    "address_token_lifetime": "How long the link and code of an address verification mail "
    "work, e.g. 24h.",
}


_OPTIONAL_LISTENERS = ("submission", "submissions", "ses", "mx")


def _convert(name: str, value: Any) -> Any:
    """Turn a string (env, CLI) or TOML value into the option's type."""
    default = Config.__dataclass_fields__[name].default
    option = f"--{name.replace('_', '-')}"
    if isinstance(default, bool):
        return value if isinstance(value, bool) else parse_bool(str(value), option)
    if isinstance(default, HostPort):
        return HostPort.parse(str(value), option)
    if name in _OPTIONAL_LISTENERS:
        text = str(value).strip()
        return None if text.lower() in ("", "off", "none") else HostPort.parse(text, option)
    if isinstance(default, Path):
        return Path(str(value))
    if name == "capture_route":  # rules may hold commas ([a,b]): a list, or one per line
        items = value if isinstance(value, list | tuple) else str(value).split()
        return tuple(str(item).strip() for item in items if str(item).strip())
    if isinstance(default, tuple):
        items = value if isinstance(value, list | tuple) else re.split(r"[,\s]+", str(value))
        return tuple(str(item).strip() for item in items if str(item).strip())
    if name in ("max_message_size", "data_min_rate", "smtp_memory_budget", "smtp_spool_threshold"):
        return value if isinstance(value, int) else parse_size(str(value), option)
    if isinstance(default, float):
        if isinstance(value, int | float):
            return float(value)
        return parse_duration(str(value), option)
    if isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{option}: expected a whole number, got {value!r}") from None
    return str(value)


def load_config(
    cli: Mapping[str, Any], environ: Mapping[str, str] | None = None, config_file: str = ""
) -> Config:
    """Merge the layers. `cli` holds only options the user gave (None values are ignored)."""
    environ = os.environ if environ is None else environ
    names = [f.name for f in fields(Config)]
    values: dict[str, Any] = {}
    path = config_file or environ.get("POSTROOM_CONFIG", "")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"--config: cannot read {path}: {exc}") from None
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in names:
                raise ConfigError(f"{path}: unknown option {key!r}")
            values[name] = _convert(name, value)
    for name in names:
        env = environ.get(f"POSTROOM_{name.upper()}")
        if env is not None:
            values[name] = _convert(name, env)
    for name, value in cli.items():
        if value is not None and name in names:
            values[name] = _convert(name, value)
    config = Config(**values)
    if not config.roles or set(config.roles) - set(ROLES):
        raise ConfigError(
            f"--roles: expected one or more of {', '.join(ROLES)}, got {', '.join(config.roles)}"
        )
    if config.delivery_lease <= 0:
        raise ConfigError("--delivery-lease: expected a positive duration")
    if config.delivery_poll_interval <= 0:
        raise ConfigError("--delivery-poll-interval: expected a positive duration, e.g. 10s")
    if config.delivery_stop_timeout < 0:
        raise ConfigError("--delivery-stop-timeout: expected a duration, e.g. 30s")
    if config.smtp_bare_line_endings not in ("accept", "reject"):
        raise ConfigError("--smtp-bare-line-endings: expected accept or reject")
    if config.log_format not in ("text", "json"):
        raise ConfigError("--log-format: expected text or json")
    if config.submission_auth_max_failures < 0:
        raise ConfigError("--submission-auth-max-failures: expected 0 or more")
    if config.submission_auth_window <= 0:
        raise ConfigError("--submission-auth-window: expected a positive duration")
    if config.domain_check_interval < 0:
        raise ConfigError("--domain-check-interval: expected a duration, or 0 for never")
    for name in ("session_idle_timeout", "session_lifetime", "login_failure_window"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')}: expected a positive duration")
    for name in ("command_timeout", "data_timeout"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')}: expected a positive duration")
    if config.smtp_memory_budget < 1:
        raise ConfigError("--smtp-memory-budget: expected a size of at least 1 octet, e.g. 256MB")
    if config.smtp_spool_threshold < 0:
        raise ConfigError("--smtp-spool-threshold: expected a size, e.g. 1MB")
    if config.data_min_rate < 0 or config.smtp_session_lifetime < 0:
        raise ConfigError("--data-min-rate, --smtp-session-lifetime: expected 0 (off) or more")
    if config.login_max_failures < 0:
        raise ConfigError("--login-max-failures: expected 0 or more")
    if config.delivery_tls not in ("opportunistic", "required", "verify", "none"):
        raise ConfigError("--delivery-tls: expected opportunistic, required, verify or none")
    if config.delivery_tls_policy:
        from postroom.delivery.worker import parse_tls_policies

        parse_tls_policies(config.delivery_tls_policy)
    if config.delivery_concurrency < 1:
        raise ConfigError("--delivery-concurrency: expected 1 or more")
    if config.suppression_soft_bounces < 0:
        raise ConfigError("--suppression-soft-bounces: expected 0 (off) or more")
    check_ses_prefix(config.ses_prefix)
    for name in ("max_templates", "max_identities"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: expected 1 or more")
    parse_rates(config.reputation_bounce_rates, "--reputation-bounce-rates")
    parse_rates(config.reputation_complaint_rates, "--reputation-complaint-rates")
    if config.reputation_min_volume < 1:
        raise ConfigError("--reputation-min-volume: expected 1 or more")
    if config.reputation_window <= 0 or config.reputation_check_interval < 0:
        raise ConfigError(
            "--reputation-window: expected a positive duration; "
            "--reputation-check-interval: 0 (off) or more"
        )
    unknown = set(config.suppression_account_reasons) - {"bounce", "complaint"}
    if unknown:
        raise ConfigError(
            f"--suppression-account-reasons: expected bounce and/or complaint, got "
            f"{', '.join(sorted(unknown))}"
        )
    if config.suppression_soft_window <= 0 or config.suppression_soft_expiry < 0:
        raise ConfigError(
            "--suppression-soft-window: expected a positive duration; "
            "--suppression-soft-expiry: 0 (forever) or more"
        )
    if config.queue_lifetime <= 0:
        raise ConfigError("--queue-lifetime: expected a positive duration")
    if not 0 < config.webhook_timeout <= 300:
        raise ConfigError("--webhook-timeout: expected a duration up to 5m")
    if not 0 < config.delivery_mx_port < 65536:
        raise ConfigError("--delivery-mx-port: expected a port number")
    if config.bounce_domain:
        config = replace(config, bounce_domain=_bounce_domain(config.bounce_domain))
    if config.ip_pools or config.default_ip_pool:
        from postroom.delivery.pools import check_pools

        check_pools(config.ip_pools, config.default_ip_pool, config.hostname)
    if config.delay_notice_after < 0:
        raise ConfigError("--delay-notice-after: expected 0 (never) or a duration")
    if config.release_allowed_recipients:
        try:
            re.compile(config.release_allowed_recipients)
        except re.error as exc:
            raise ConfigError(f"--release-allowed-recipients: {exc}") from None
    check_public_names(config)
    if config.spamassassin:
        HostPort.parse(config.spamassassin, "--spamassassin")
    if not 0 < config.link_check_timeout <= 60:
        raise ConfigError("--link-check-timeout: expected a duration from 1ms up to 60s")
    if config.html_check_data:
        from postroom.checks.html_support import load_table

        load_table(config.html_check_data)
    for text in config.capture_route:
        from postroom.core.capture_routes import parse_route

        try:
            parse_route(text)
        except InvalidInput as exc:
            raise ConfigError(f"--capture-route: {exc}") from None
    if config.address_token_lifetime <= 0:
        raise ConfigError("--address-token-lifetime: expected a positive duration")
    sender = config.system_sender.strip()
    if sender and (sender.count("@") != 1 or any(c in sender for c in " <>\r\n\t")):
        raise ConfigError(f"--system-sender: expected an email address, got {sender!r}")
    return config


def _bounce_domain(text: str) -> str:
    """--bounce-domain as lower-case A-labels; ConfigError when it is not a domain name."""
    from postroom.dns.dkim import normalize_domain

    try:
        return normalize_domain(text)
    except (ValueError, InvalidInput):
        raise ConfigError(f"--bounce-domain: expected a domain name, got {text!r}") from None


# First path segments the HTTP listener serves itself: --ses-prefix may not hide them.
_HTTP_SEGMENTS = frozenset(
    {
        "",
        "api",
        "p",
        "view",
        "ui",
        "admin",
        "login",
        "logout",
        "livez",
        "readyz",
        "metrics",
        "message",
        "static",
        "favicon.ico",
        "confirm-address",
    }
)


def check_ses_prefix(prefix: str) -> None:
    """ConfigError for a --ses-prefix that is not a path like /ses, or that would hide a
    path of the HTTP listener."""
    if not prefix:
        return
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", prefix):
        raise ConfigError(
            f"--ses-prefix: expected a path such as /ses (letters, digits, . _ ~ -, no "
            f"trailing slash), got {prefix!r}"
        )
    first = prefix.split("/")[1]
    if first.lower() in _HTTP_SEGMENTS:
        raise ConfigError(
            f"--ses-prefix: {prefix!r} would hide the HTTP listener's /{first} paths; "
            "choose another, e.g. /ses"
        )


def system_sender(config: Config) -> str:
    """The sender of Postroom's own mail: --system-sender, else postroom@<hostname>."""
    return config.system_sender.strip() or f"postroom@{config.hostname}"


def public_url_host(url: str) -> str:
    """The host name of --public-url (lower case, without port or brackets); ConfigError when
    it is not an absolute http(s) URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--public-url: expected an http:// or https:// URL, got {url!r}")
    return parts.hostname.rstrip(".").lower()


def check_public_names(config: Config) -> None:
    """ConfigError for a --public-url, --allowed-hosts or --trusted-proxies entry that
    cannot be used."""
    if config.public_url:
        public_url_host(config.public_url)
    for entry in config.allowed_hosts:
        name = entry.strip().lower()
        if name.startswith("*."):
            name = name[2:]
        try:
            ipaddress.ip_network(name.strip("[]"), strict=False)
            continue
        except ValueError:
            pass
        if not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?", name):
            raise ConfigError(
                f"--allowed-hosts: {entry!r} is not a host name, *.suffix, IP address or network"
            )
    for entry in config.trusted_proxies:
        try:
            ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            raise ConfigError(
                f"--trusted-proxies: {entry!r} is not an IP address or network"
            ) from None
