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
* `mx`: the inbound MX listener (`--mx`): reports to VERP return paths become events, mail
  for verified domains is stored in their project, everything else is relay denied.

The SMTP doors implement `postroom.smtp.server.SmtpDoor`.
"""
