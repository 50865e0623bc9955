"""The process-wide encoder: the model is loaded once per process, on first use."""

from __future__ import annotations

import gc
import threading

from flask import current_app

from app.db import db_session
from app.prometheus import TimedRematch
from app.services.ranking_model import ranking_state
from app.services.rematching import DeferredRematch, Rematch
from matching import Encoder, default_encoder
from matching.embeddings import model_name
from matching.scoring import ScoreWeights
from matching.stand_in import StandInEncoder

# `TANDEM_MODEL=stand-in`: the hashing stand-in (matching.stand_in), whose rankings are NOT
# semantic. For load benchmarks on a catalogue generated with `--encoder stand-in` only, so
# that searches are ranked against the vectors that catalogue was stored with.
STAND_IN = "stand-in"
# Set on the app by gunicorn.conf.py in each web process: objects that live as long as the
# process are moved out of the garbage collector's reach once loaded (`gc.freeze`).
FREEZE_HEAP = "TANDEM_FREEZE_HEAP"
_LOADING = threading.Lock()


def get_encoder() -> Encoder:
    """The encoder for the app's `TANDEM_MODEL`, or the stand-in for `stand-in` (tests may
    place one in `app.extensions`)."""
    encoder = current_app.extensions.get("tandem.encoder")
    if encoder is not None:
        return encoder
    with _LOADING:  # one model per process, however many threads ask first
        encoder = current_app.extensions.get("tandem.encoder")
        if encoder is None:
            chosen = model_name(current_app.config["TANDEM_MODEL"])
            encoder = StandInEncoder() if chosen == STAND_IN else default_encoder(chosen)
            current_app.extensions["tandem.encoder"] = encoder
            if current_app.config.get(FREEZE_HEAP):
                # The model's objects live as long as the process: a full collection need
                # not walk them again (gunicorn.conf.py froze the app's own the same way).
                # Garbage first, so that nothing dead is kept for good.
                gc.collect()
                gc.freeze()
    return encoder


def get_rematch() -> Rematch:
    """Everything a service needs to re-rank recommendations after a change, now (each
    re-ranking timed in /metrics)."""
    return TimedRematch(
        encoder=get_encoder(), k=current_app.config["TANDEM_TOP_K"], weights=get_weights()
    )


def get_weights() -> ScoreWeights:
    """The weights that rank now: the newest learned model's when it was adopted against the
    weights configured for this app (validated at start-up), else the configured ones
    (`app.services.ranking_model.ranking_state`)."""
    return ranking_state(
        session=db_session(), configured=current_app.extensions["tandem.weights"]
    ).weights


def queued_rematch() -> DeferredRematch:
    """For web requests: re-rank on the job queue once the request's change has committed
    (the page shows "finding matches" until then)."""
    return DeferredRematch()
