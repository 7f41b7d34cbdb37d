"""The interactive API docs at ``/schema``, served without the internet.

Litestar's render plugins load their scripts from a CDN by default: a blank page offline.
Swagger UI's files are vendored under ``static/vendor/swagger-ui`` (swagger-ui-dist, its
licence beside it) and the page points at them.
"""

from __future__ import annotations

from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin

VENDOR = "/static/vendor/swagger-ui"


def offline_docs() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at ``/schema`` (and ``/schema/swagger``) with every file from the app."""
    return [
        SwaggerRenderPlugin(
            path=["/", "/swagger"],
            js_url=f"{VENDOR}/swagger-ui-bundle.js",
            css_url=f"{VENDOR}/swagger-ui.css",
            standalone_preset_js_url=f"{VENDOR}/swagger-ui-standalone-preset.js",
            favicon=f'<link rel="icon" type="image/png" href="{VENDOR}/favicon-32x32.png">',
        )
    ]
