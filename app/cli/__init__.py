"""Command-line interface, as blueprints: `flask --app app <group> ...`."""

from __future__ import annotations

from flask import Flask

from app.cli.allocate import bp as allocate_bp
from app.cli.catalogue import bp as catalogue_bp
from app.cli.db import bp as db_bp
from app.cli.demo import bp as demo_bp
from app.cli.export import bp as export_bp
from app.cli.mail import bp as mail_bp
from app.cli.match import bp as match_bp
from app.cli.partners import bp as partners_bp
from app.cli.ranking import bp as ranking_bp
from app.cli.worker import bp as worker_bp


def register(app: Flask) -> None:
    for blueprint in (
        allocate_bp,
        catalogue_bp,
        db_bp,
        demo_bp,
        export_bp,
        mail_bp,
        match_bp,
        partners_bp,
        ranking_bp,
        worker_bp,
    ):
        app.register_blueprint(blueprint)
