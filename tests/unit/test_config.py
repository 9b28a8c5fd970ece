from __future__ import annotations

from pathlib import Path

import pytest

from postroom.config import Config, HostPort, load_config, parse_duration, parse_size
from postroom.core.errors import ConfigError


def test_defaults() -> None:
    config = load_config({}, environ={})
    assert config == Config()
    assert config.smtp == HostPort("127.0.0.1", 1025)
    assert config.http == HostPort("127.0.0.1", 8025)


def test_layers_cli_over_env_over_file(tmp_path: Path) -> None:
    file = tmp_path / "postroom.toml"
    file.write_text('smtp = "0.0.0.0:2525"\nmax-messages = 10\nsmtp_tls = true\nmax_age = "7d"\n')
    env = {"POSTROOM_MAX_MESSAGES": "20", "POSTROOM_HTTP": "[::1]:9000"}
    config = load_config({"max_messages": "30"}, environ=env, config_file=str(file))
    assert config.smtp == HostPort("0.0.0.0", 2525)
    assert config.http == HostPort("::1", 9000)
    assert config.max_messages == 30
    assert config.smtp_tls is True
    assert config.max_age == 7 * 86400


def test_config_file_from_environment(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('hostname = "mx.example"\n')
    assert load_config({}, environ={"POSTROOM_CONFIG": str(file)}).hostname == "mx.example"


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"smtp": "localhost"}, "--smtp: expected HOST:PORT"),
        ({"smtp": "a:99999"}, "--smtp: expected HOST:PORT"),
        ({"max_recipients": "many"}, "--max-recipients: expected a whole number"),
        ({"max_message_size": "big"}, "--max-message-size: expected a size"),
        ({"smtp_tls": "perhaps"}, "--smtp-tls: expected true or false"),
        ({"command_timeout": "soon"}, "--command-timeout: expected a duration"),
        ({"smtp_bare_line_endings": "maybe"}, "--smtp-bare-line-endings"),
        ({"suppression_account_reasons": "bounce,manual"}, "--suppression-account-reasons"),
        ({"mx": "port25"}, "--mx: expected HOST:PORT"),
        ({"delivery_tls": "strict"}, "--delivery-tls: expected opportunistic, required, verify"),
        ({"delivery_tls_policy": "bank.example"}, "--delivery-tls-policy: expected DOMAIN=MODE"),
        ({"delivery_tls_policy": "bank.example=strict"}, "--delivery-tls-policy: bank.example"),
        ({"delivery_stop_timeout": "-1"}, "--delivery-stop-timeout"),
        ({"ses_prefix": "ses"}, "--ses-prefix: expected a path such as /ses"),
        ({"ses_prefix": "/ses/"}, "--ses-prefix: expected a path such as /ses"),
        ({"ses_prefix": "/"}, "--ses-prefix: expected a path such as /ses"),
        ({"ses_prefix": "/a b"}, "--ses-prefix: expected a path such as /ses"),
        ({"ses_prefix": "/api/ses"}, "--ses-prefix: '/api/ses' would hide"),
        ({"ses_prefix": "/P"}, "--ses-prefix: '/P' would hide"),
    ],
)
def test_bad_values_name_the_option(cli: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(cli, environ={})


def test_unknown_file_option(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("smpt = 1\n")
    with pytest.raises(ConfigError, match="unknown option 'smpt'"):
        load_config({}, environ={}, config_file=str(file))


def test_units() -> None:
    assert parse_size("40MB", "x") == 40 * 1024 * 1024
    assert parse_size("512k", "x") == 512 * 1024
    assert parse_size("1000", "x") == 1000
    assert parse_duration("5m", "x") == 300
    assert parse_duration("90", "x") == 90


def test_slow_client_limits() -> None:
    config = load_config(
        {"data_min_rate": "2KB", "smtp_session_lifetime": "30m", "command_timeout": "5m"},
        environ={},
    )
    assert (config.data_min_rate, config.smtp_session_lifetime) == (2048, 1800.0)
    off = load_config(
        {}, environ={"POSTROOM_DATA_MIN_RATE": "0", "POSTROOM_SMTP_SESSION_LIFETIME": "0"}
    )
    assert (off.data_min_rate, off.smtp_session_lifetime) == (0, 0.0)
    for cli in ({"command_timeout": "0"}, {"data_min_rate": "-1"}):
        with pytest.raises(ConfigError):
            load_config(cli, environ={})


def test_public_names_and_trusted_proxies(tmp_path: Path) -> None:
    file = tmp_path / "postroom.toml"
    file.write_text('allowed-hosts = ["mail.example.com", "*.preview.test", "10.0.0.0/8"]\n')
    env = {"POSTROOM_TRUSTED_PROXIES": "127.0.0.1, 192.0.2.0/24"}
    cli = {"public_url": "https://postroom.example.org"}
    config = load_config(cli, environ=env, config_file=str(file))
    assert config.allowed_hosts == ("mail.example.com", "*.preview.test", "10.0.0.0/8")
    assert config.trusted_proxies == ("127.0.0.1", "192.0.2.0/24")
    assert config.public_url == "https://postroom.example.org"
    assert load_config({"allowed_hosts": "a.test,b.test"}, environ={}).allowed_hosts == (
        "a.test",
        "b.test",
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("public_url", "mail.example.com", "--public-url"),
        ("public_url", "ftp://mail.example.com", "--public-url"),
        ("allowed_hosts", "evil.test/x", "--allowed-hosts"),
        ("allowed_hosts", "*", "--allowed-hosts"),
        ("trusted_proxies", "*", "--trusted-proxies"),
        ("trusted_proxies", "proxy.example.com", "--trusted-proxies"),
    ],
)
def test_public_names_are_checked(option: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({option: value}, environ={})


def test_bounce_domain_is_a_domain_name() -> None:
    config = load_config({"bounce_domain": "Bounces.Example.COM."}, environ={})
    assert config.bounce_domain == "bounces.example.com" and config.verp is True
    assert load_config({"verp": "no"}, environ={}).verp is False
    for bad in ("localhost", "bad domain.example", "-x.example"):
        with pytest.raises(ConfigError, match="--bounce-domain"):
            load_config({"bounce_domain": bad}, environ={})


def test_account_wide_suppression_reasons() -> None:
    config = load_config({"suppression_account_reasons": "bounce, complaint"}, environ={})
    assert config.suppression_account_reasons == ("bounce", "complaint")
    assert load_config({}, environ={}).suppression_account_reasons == ()


def test_ses_prefix() -> None:
    assert load_config({"ses_prefix": "/aws/ses"}, environ={}).ses_prefix == "/aws/ses"
