"""The SMTP command a remote server's reply answered, as bounce texts tell it."""

from __future__ import annotations

import re

_COMMAND = re.compile(
    r"in reply to (?:end of )?(?P<postfix>MAIL FROM|RCPT TO|DATA|HELO|EHLO|STARTTLS)|"
    r"after (?:pipelined )?(?P<exim>MAIL FROM|RCPT TO|end of data|DATA|HELO|EHLO|STARTTLS|"
    r"RCPT(?= command)|MAIL(?= command))|"
    r">>> (?P<sendmail>MAIL FROM|RCPT TO|DATA|HELO|EHLO|STARTTLS|QUIT)|"
    r"did not like our (?P<dragonfly>MAIL FROM|RCPT TO|DATA)|"
    r"\[(?P<yahoo>RCPT_TO|MAIL_FROM|DATA)\]|"
    r"SMTP:(?P<x3>RCPT|MAIL|DATA) host|"
    r"(?P<qrcpt>does not like recipient)|"
    r"(?P<qdata>failed on DATA command|failed after I sent the message)|"
    r"(?P<qmail>but sender was rejected)|(?P<qhelo>but my name was rejected|"
    r"refused to talk to me)",
    re.IGNORECASE,
)


def smtp_command(text: str) -> str:
    """The SMTP command a reply in `text` answered, as written by Postfix ("in reply to RCPT TO
    command"), Exim ("after RCPT TO"), Sendmail (">>> RCPT To:") or qmail ("does not like
    recipient"); "" when the text does not say."""
    match = _COMMAND.search(text)
    if not match:
        return ""
    word = (
        match.group("postfix")
        or match.group("exim")
        or match.group("sendmail")
        or match.group("dragonfly")
        or match.group("yahoo")
        or match.group("x3")
    )
    if word:
        word = word.upper().replace("_", " ")
        if word == "END OF DATA":
            return "DATA"
        return word.split()[0]
    if match.group("qrcpt"):
        return "RCPT"
    if match.group("qdata"):
        return "DATA"
    if match.group("qmail"):
        return "MAIL"
    return "EHLO"
