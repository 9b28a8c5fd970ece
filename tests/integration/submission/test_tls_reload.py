"""The TLS certificate is reloaded on SIGHUP: new handshakes present the new certificate on
both submission doors (STARTTLS and implicit TLS), established sessions go on."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme

from .client import Client
from .conftest import Env, write_cert


async def peer_certificate(env_or_port: Env | int, ca_file: Path, *, starttls: bool) -> bytes:
    port = (
        env_or_port
        if isinstance(env_or_port, int)
        else (env_or_port.submission_port if starttls else env_or_port.submissions_port)
    )
    context = ssl.create_default_context(cafile=str(ca_file))
    if starttls:
        client = await Client.connect(port)
        await client.ehlo()
        await client.starttls(context)
    else:
        client = await Client.connect(port, tls=context)
    ssl_object = client.writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True)
    await client.close()
    assert der is not None
    return bytes(der)


def der_of(cert_file: Path) -> bytes:
    first = (
        cert_file.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )
    return ssl.PEM_cert_to_DER_cert(first)


def reissue(ca: trustme.CA, directory: Path, key_type: trustme.KeyType) -> bytes:
    """Replace the certificate files with a new pair; return the new certificate (DER)."""
    cert = ca.issue_cert("127.0.0.1", "localhost", key_type=key_type)
    staging = directory / "staging"
    staging.mkdir(exist_ok=True)
    cert.private_key_pem.write_to_path(str(staging / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(staging / "cert.pem"))
    os.replace(staging / "key.pem", directory / "key.pem")
    os.replace(staging / "cert.pem", directory / "cert.pem")
    return der_of(directory / "cert.pem")


async def reload(env: Env) -> bool:
    async def call() -> bool:
        return env.server.app.reload_tls()

    return bool(await asyncio.to_thread(env.server.call, call()))


async def test_reload_presents_the_new_certificate(env: Env) -> None:
    old = der_of(env.cert_dir / "cert.pem")
    assert await peer_certificate(env, env.ca_file, starttls=True) == old
    assert await peer_certificate(env, env.ca_file, starttls=False) == old

    established = await Client.connect(env.submissions_port, tls=env.client_context())
    await established.ehlo()

    new = reissue(env.ca, env.cert_dir, trustme.KeyType.RSA)  # another key type than before
    assert new != old
    assert await peer_certificate(env, env.ca_file, starttls=True) == old  # not yet reloaded
    assert await reload(env)
    assert await peer_certificate(env, env.ca_file, starttls=True) == new
    assert await peer_certificate(env, env.ca_file, starttls=False) == new

    assert (await established.command("NOOP")).startswith("250 ")  # the old session goes on
    await established.close()


async def test_a_broken_pair_keeps_the_old_certificate(env: Env) -> None:
    old = der_of(env.cert_dir / "cert.pem")
    (env.cert_dir / "key.pem").write_text("not a key")
    assert not await reload(env)
    assert await peer_certificate(env, env.ca_file, starttls=False) == old


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sighup_reloads_the_certificate_of_a_running_server(
    tmp_path: Path, ca: trustme.CA
) -> None:
    cert_dir = tmp_path / "tls"
    cert, key = write_cert(ca, cert_dir)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-c", "from postroom.cli import main; main()", "serve",
            "--data-dir", str(tmp_path / "data"),
            "--smtp", f"127.0.0.1:{free_port()}",
            "--http", f"127.0.0.1:{free_port()}",
            "--submissions", f"127.0.0.1:{port}",
            "--tls-cert", str(cert), "--tls-key", str(key),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        for _ in range(600):  # wait for the listener (up to about a minute)
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        old = der_of(cert)
        assert await peer_certificate(port, ca_file, starttls=False) == old
        new = reissue(ca, cert_dir, trustme.KeyType.RSA)
        process.send_signal(signal.SIGHUP)
        seen = old
        for _ in range(600):  # the signal is handled asynchronously
            seen = await peer_certificate(port, ca_file, starttls=False)
            if seen != old:
                break
            await asyncio.sleep(0.05)
        assert seen == new
        assert process.poll() is None  # SIGHUP did not stop the server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls_below_1_2_is_refused(env: Env) -> None:
    context = ssl.create_default_context(cafile=str(env.ca_file))
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        await Client.connect(env.submissions_port, tls=context)
    except (ssl.SSLError, ConnectionError):
        pass
    else:
        raise AssertionError("a TLS 1.1 handshake succeeded")
    assert await peer_certificate(env, env.ca_file, starttls=False)  # TLS 1.2+ still works
