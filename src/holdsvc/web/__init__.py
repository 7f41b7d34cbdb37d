"""The service's own web pages: Jinja templates, htmx fragments and small JS modules.

Everything is registered by one plugin, so the app factory only names it::

    Litestar(..., plugins=[WebPlugin()])
"""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from holdsvc.web.pages import TEMPLATES, web_router
from holdsvc.web.views import register_filters

__all__ = ["WebPlugin"]


class WebPlugin(InitPluginProtocol):
    """Adds the page routes, the static files and the Jinja template engine to the app."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Register the pages; the JSON API is left exactly as it is."""
        app_config.route_handlers.append(web_router())
        app_config.template_config = TemplateConfig(
            directory=TEMPLATES,
            engine=JinjaTemplateEngine,
            engine_callback=register_filters,
        )
        return app_config
