"""What the dashboard is rendered and served with: its Jinja2 templates, its static files (htmx,
its SSE extension, Redoc and the stylesheet, vendored: no CDN), and the CSRF protection of
every form POST."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import RedocRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from receiver.config import Config
from receiver.notify.message import run_headline
from receiver.web.dashboard import charts
from receiver.web.dashboard import format as fmt
from receiver.web.dashboard.session import csrf_secret, session_key

HERE: Final = Path(__file__).parent
STATIC: Final = HERE / "static"
TEMPLATES: Final = HERE / "templates"


def _asset_version() -> str:
    """Changes with any static file: their URLs carry it, so a browser may cache them long."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


ASSET_VERSION: Final = _asset_version()
SCHEMA_PAGE: Final = RedocRenderPlugin(
    js_url=f"/static/redoc.standalone.js?v={ASSET_VERSION}",
    google_fonts=False,
    favicon="<link rel='icon' href='data:,'>",
)
# Paths the CSRF check leaves alone: the callbacks (signed), the bearer API, the open GETs.
CSRF_EXEMPT: Final = ["^/callbacks/", "^/api/", "^/health", "^/metrics", "^/schema", "^/static/"]


# Compressed: the dashboard's pages and files (a phone on a slow link). Left as they were: the
# event stream (gzip would hold its events back), the API, the callbacks, health and metrics.
COMPRESSION_EXEMPT: Final = ["^/events", "^/callbacks/", "^/api/", "^/health", "^/metrics"]


def compression_config() -> CompressionConfig:
    return CompressionConfig(backend="gzip", gzip_compress_level=6, exclude=COMPRESSION_EXEMPT)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # partner text is escaped wherever it lands in HTML
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates change with the package, not while it runs
    )
    env.filters.update(fmt.FILTERS)
    env.globals.update(
        asset_version=ASSET_VERSION,
        query=fmt.query,
        headline=run_headline,
        days_chart=charts.days_chart,
        duration_chart=charts.duration_chart,
    )
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


def static_files() -> Router:
    return create_static_files_router(
        path="/static",
        directories=[STATIC],
        cache_control=CacheControlHeader(max_age=31_536_000, public=True),
        include_in_schema=False,
    )


def csrf_config(config: Config) -> CSRFConfig:
    """Tokens signed with a key derived from the session key (a random one while there is no
    API token: there is then no form to protect)."""
    key = session_key(config)
    return CSRFConfig(
        secret=csrf_secret(key) if key is not None else secrets.token_hex(32),
        cookie_name="receiver_csrf",
        header_name="x-csrftoken",
        cookie_httponly=True,
        cookie_samesite="strict",
        exclude=CSRF_EXEMPT,
    )
