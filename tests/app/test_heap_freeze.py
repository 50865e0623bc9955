"""A web process moves what lives as long as it does out of the garbage collector's reach
(gunicorn.conf.py `post_worker_init`, then the model once `get_encoder` loads it), so a full
collection does not stall its requests; elsewhere (tests, commands) nothing is frozen."""

from __future__ import annotations

import gc
import runpy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

from app.matcher import FREEZE_HEAP, get_encoder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (frozen objects are never freed)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_web_process_freezes_the_loaded_app(app: Flask, unfrozen: None) -> None:
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0

    settings["post_worker_init"](SimpleNamespace(wsgi=app))

    assert app.config[FREEZE_HEAP] is True
    assert gc.get_freeze_count() > 0


def test_the_model_is_frozen_once_loaded_in_a_web_process(app: Flask, unfrozen: None) -> None:
    app.extensions.pop("tandem.encoder")
    app.config["TANDEM_MODEL"] = "stand-in"
    app.config[FREEZE_HEAP] = True
    with app.app_context():
        encoder = get_encoder()
    assert gc.get_freeze_count() > 0
    assert app.extensions["tandem.encoder"] is encoder


def test_elsewhere_loading_the_model_freezes_nothing(app: Flask, unfrozen: None) -> None:
    app.extensions.pop("tandem.encoder")
    app.config["TANDEM_MODEL"] = "stand-in"
    with app.app_context():
        get_encoder()
    assert gc.get_freeze_count() == 0
