"""Parse stored messages for listing, search and display.

- `summary.summarize(raw)`: the ingest-time Summary (hot path, never raises).
- `view.parse_message(raw)`, `view.get_part(raw, part_id)`: the message view and part downloads.
- `tags.tags_for(summary, recipients)`: tags from X-Tags and plus-addressing.
- `htmltext.html_to_text(html)`: readable text of an HTML body (re-exported by `view`).
"""
