"""Tandem's web application: `create_app()` builds it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from apiflask import APIFlask
from flask import Flask

from app import config, db
from app.config import ROOT

API_VERSION = "1.0.0"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then environment variables, then `test_config`."""
    # APIFlask is Flask plus the partner API's schemas and OpenAPI document; the portal's
    # pages are plain Flask blueprints and keep their HTML error pages.
    app = APIFlask(
        __name__,
        title="Tandem partner API",
        version=API_VERSION,
        spec_path="/api/v1/openapi.json",
        docs_path=None,
        json_errors=False,
        instance_path=os.environ.get("TANDEM_INSTANCE_PATH") or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(config.defaults(app.instance_path))
    app.config.update(config.from_environment())
    if test_config is not None:
        app.config.update(test_config)
    config.ensure_secret_key(app)
    app.extensions["tandem.weights"] = config.score_weights(app)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("app", "matching"):
        logging.getLogger(name).setLevel(logging.INFO)

    db.init_app(app)

    from app import queue

    queue.init_app(app)

    from app import api, auth, cli, errors, filters, headers, health, pagecache, prometheus, web
    from app.admin.views import bp as admin_bp
    from app.api import views as api_views
    from app.collaborations.views import bp as collaborations_bp
    from app.dashboard.views import bp as dashboard_bp
    from app.main.views import bp as main_bp
    from app.matches.views import bp as matches_bp
    from app.offers.views import bp as offers_bp
    from app.proposals.views import bp as proposals_bp
    from app.publications.views import bp as publications_bp
    from app.search.views import bp as search_bp

    web.init_app(app)
    headers.init_app(app)
    auth.init_app(app)
    app.register_blueprint(main_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(matches_bp)
    app.register_blueprint(collaborations_bp)
    app.register_blueprint(publications_bp)
    app.register_blueprint(search_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(proposals_bp)
    app.register_blueprint(offers_bp)
    cli.register(app)
    errors.register(app)
    filters.register(app)
    api.init_app(app, api_views)
    health.init_app(app)
    prometheus.init_app(app)
    # Last: its hook that serves a cached page goes first, its other hooks last.
    pagecache.init_app(app)
    from app import dashcache  # the signed-in dashboards, kept per person

    dashcache.init_app(app)
    from app import pagehits  # kept public pages answered before Flask

    pagehits.init_app(app)
    headers.trust_proxies(app)  # outermost, so every layer sees the proxies' addresses
    return app
