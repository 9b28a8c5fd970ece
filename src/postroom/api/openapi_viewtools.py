"""OpenAPI 2.0 paths of the message view's tools, Postroom's additions to /api/v1 (merged into
/api/v1/swagger.json by api/swagger.py, each marked `x-postroom-extension`): the bodies as
downloads (api/body_downloads.py) and the screenshot (api/screenshot.py)."""

from __future__ import annotations

from typing import Any

_ID = {
    "type": "string",
    "description": 'Message database ID or "latest"',
    "name": "ID",
    "in": "path",
    "required": True,
}
_DOWNLOAD = (
    "Served as `Content-Disposition: attachment`, named after the subject (RFC 6266 "
    "`filename*` with an ASCII fallback; the message ID when there is no subject), with "
    "`X-Content-Type-Options: nosniff` and a sandbox Content-Security-Policy.\n\nThe ID can "
    "be set to `latest` for the latest message."
)


def _body(kind: str, media: str, what: str, operation: str) -> dict[str, Any]:
    return {
        "get": {
            "description": f"Postroom extension. {what} {_DOWNLOAD}",
            "produces": [media],
            "schemes": ["http", "https"],
            "tags": ["message"],
            "summary": f"Download the {kind} body",
            "operationId": operation,
            "x-postroom-extension": True,
            "parameters": [_ID],
            "responses": {
                "200": {"description": f"the {kind} body", "schema": {"type": "string"}},
                "404": {"$ref": "#/responses/NotFoundResponse"},
            },
        }
    }


VIEWTOOLS_PATHS: dict[str, Any] = {
    "/api/v1/message/{ID}/body.html": _body(
        "HTML",
        "text/html",
        "The message's HTML body as sent (`cid:` references left as they are); 404 when it "
        "has none.",
        "BodyHTMLParams",
    ),
    "/api/v1/message/{ID}/body.txt": _body(
        "text",
        "text/plain",
        "The message's text body; for a message without one, the text derived from its HTML "
        "(as `Text` of the message).",
        "BodyTextParams",
    ),
    "/api/v1/message/{ID}/screenshot.png": {
        "get": {
            "description": "Postroom extension. A PNG of the message's HTML drawn by headless "
            "Chromium on the server (`--chromium`): the message's own inline images are drawn, "
            "nothing remote is requested and no script runs. The page is cut at 8000 pixels "
            "(`X-Postroom-Cut: 1`). One screenshot is made at a time. `Screenshots` of "
            "`/api/v1/webui` says whether Chromium is there.\n\nThe ID can be set to `latest` "
            "for the latest message.",
            "produces": ["image/png"],
            "schemes": ["http", "https"],
            "tags": ["message"],
            "summary": "Screenshot of the HTML",
            "operationId": "ScreenshotParams",
            "x-postroom-extension": True,
            "parameters": [
                _ID,
                {
                    "type": "integer",
                    "description": "Width in CSS pixels, 320 to 1920 (default 1024)",
                    "name": "width",
                    "in": "query",
                },
                {
                    "type": "string",
                    "description": "1: as a download (Content-Disposition: attachment)",
                    "name": "dl",
                    "in": "query",
                },
            ],
            "responses": {
                "200": {"description": "PNG image", "schema": {"type": "string"}},
                "400": {"$ref": "#/responses/ErrorResponse"},
                "404": {"$ref": "#/responses/NotFoundResponse"},
                "503": {
                    "description": "No Chromium, or it failed: `Error` says why, `Field` is "
                    "`chromium`",
                    "schema": {
                        "type": "object",
                        "properties": {"Error": {"type": "string"}, "Field": {"type": "string"}},
                    },
                },
            },
        }
    },
}
