"""Doors: one module per way mail arrives.

Each door authenticates its client, picks the project and answers the policy checks, then
hands complete messages to the acceptance pipeline (pipeline/acceptance.py), which holds the
rules every door shares.

* `capture`: the testing SMTP listener; any sender, recipient and credentials, into the
  default capture project.
* `submission`: the submission listeners (587 STARTTLS, 465 implicit TLS): AUTH against SMTP
  credentials or an IP credential, then the submission checks.
* `http_send`: `POST /api/v1/send` of the testing API.
* `ingest`: `postroom ingest` (files, Maildir, mbox).

The SMTP doors implement `postroom.smtp.server.SmtpDoor`; the MX door and the SES-compatible
API will live here too.
"""
