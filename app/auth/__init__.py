"""Sign-up, sign-in, email verification, password reset and two-factor sign-in.

Flask-Security-Too does the work, on Flask-Login and Flask-WTF, over the `user` table (see
`account.py`). Passwords are argon2id hashes; every form carries a CSRF token; sign-in is
rate limited per account and per address (Flask-Limiter, in Redis when `REDIS_URL` is set).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import email_validator
from flask import Flask, current_app, g, has_request_context, render_template, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import user_logged_in, user_logged_out
from flask_security import MailUtil, Security, SQLAlchemySessionUserDatastore, user_registered
from flask_security.mail_util import EmailValidateException
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from sqlmodel import select
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.local import LocalProxy

from app.auth import forms
from app.auth.account import Account
from app.auth.messages import MESSAGES
from app.auth.passwords import TandemPasswordUtil
from app.auth.totp import OneTimeTotp
from app.db import db_session
from app.services import accounts, outbox
from app.transaction import one_transaction
from models import User, utcnow

csrf = CSRFProtect()


def security_defaults(app: Flask) -> dict[str, Any]:
    secret = app.config["SECRET_KEY"].encode()
    return {
        "SECURITY_REGISTERABLE": True,
        "SECURITY_CONFIRMABLE": True,
        "SECURITY_RECOVERABLE": True,
        "SECURITY_CHANGEABLE": True,
        "SECURITY_TWO_FACTOR": True,
        "SECURITY_TWO_FACTOR_ENABLED_METHODS": ["authenticator"],
        "SECURITY_TOTP_ISSUER": "Tandem",
        "SECURITY_TOTP_SECRETS": {
            "1": app.config.get("TANDEM_TOTP_SECRET")
            or hmac.new(secret, b"tandem-totp", hashlib.sha256).hexdigest()
        },
        "SECURITY_PASSWORD_HASH": "argon2",
        "SECURITY_PASSWORD_SINGLE_HASH": True,
        "SECURITY_PASSWORD_LENGTH_MIN": 12,
        "SECURITY_PASSWORD_COMPLEXITY_CHECKER": "zxcvbn",
        "SECURITY_ZXCVBN_MINIMUM_SCORE": 3,
        "SECURITY_PASSWORD_CHECK_BREACHED": False,
        # Tandem's mail carries addresses in ASCII headers: an address whose part before the
        # @ is not ASCII (SMTPUTF8) could never get its confirmation mail.
        # Sign-in, password reset, resend confirmation and sign-up answer the same for an
        # address with an account and one without (forms.UniformAnswers keeps the messages
        # about what was typed); sign-up with a taken address mails its owner instead.
        "SECURITY_RETURN_GENERIC_RESPONSES": True,
        # Sessions only: Flask-Security's auth tokens are not needed by anything in Tandem.
        "SECURITY_API_ENABLED_METHODS": ["session"],
        "SECURITY_EMAIL_VALIDATOR_ARGS": {"check_deliverability": False, "allow_smtputf8": False},
        "SECURITY_CONFIRM_EMAIL_WITHIN": timedelta(days=3),
        "SECURITY_RESET_PASSWORD_WITHIN": timedelta(hours=2),
        "SECURITY_JOIN_USER_ROLES": False,
        # Aware UTC times, as every other timestamp in the database.
        "SECURITY_DATETIME_FACTORY": utcnow,
        "SECURITY_TWO_FACTOR_RESCUE_MAIL": app.config["TANDEM_SUPPORT_EMAIL"],
        # Account pages are never stored by a browser or a shared cache. (The library's
        # default, {"private": True, ...}, is rendered as "private=True".)
        "SECURITY_CACHE_CONTROL": {"private": None, "no-store": None},
        "SECURITY_POST_LOGIN_VIEW": "/dashboard",
        "SECURITY_POST_REGISTER_VIEW": "/login",
        "SECURITY_POST_CONFIRM_VIEW": "/login",
        "SECURITY_POST_LOGOUT_VIEW": "/",
        "SECURITY_POST_CHANGE_VIEW": "/account",
        "SECURITY_EMAIL_SENDER": app.config["MAIL_DEFAULT_SENDER"],
        "SECURITY_EMAIL_SUBJECT_REGISTER": "Welcome to Tandem: please confirm your email",
        "SECURITY_EMAIL_SUBJECT_CONFIRM": "Confirm your email for Tandem",
        "SECURITY_EMAIL_SUBJECT_PASSWORD_RESET": "Reset your Tandem password",
        "SECURITY_EMAIL_SUBJECT_PASSWORD_NOTICE": "Your Tandem password was reset",
        "SECURITY_EMAIL_SUBJECT_PASSWORD_CHANGE_NOTICE": "Your Tandem password was changed",
        "SECURITY_EMAIL_SUBJECT_TWO_FACTOR_RESCUE": "Two-factor help: a member cannot sign in",
        **{f"SECURITY_MSG_{name}": message for name, message in MESSAGES.items()},
    }


# Mails the library sends under another mail's subject.
SUBJECTS = {"welcome_existing": "Your Tandem account: someone tried to sign up with your address"}


class TandemMailUtil(MailUtil):
    """Flask-Security's mails go through our mail layer; addresses are stored lowercased."""

    def send_mail(
        self,
        template: str,
        subject: str,
        recipient: str | tuple[str, str],
        sender: str | tuple[str, str],
        body: str | None,
        html: str | None,
        **kwargs: Any,
    ) -> None:
        """Through the outbox, like every mail: retried if the server is down, never lost.
        The row is committed with the rest of the request (every account page runs in
        `one_transaction`), so a page that fails sends nothing."""
        name, email = recipient if isinstance(recipient, tuple) else ("", recipient)
        subject = SUBJECTS.get(template.rsplit("/", 1)[-1], subject)
        body, html = _public_links(body or ""), _public_links(html or "")
        digest = hashlib.sha256(f"{subject}\0{body}\0{html}".encode()).hexdigest()[:24]
        session = db_session()
        user_id = session.exec(select(User.id).where(User.email == email.lower())).first()
        outbox.enqueue(
            session=session,
            emails=[
                outbox.Email(
                    key=f"account:{template}:{email.lower()}:{digest}",
                    kind=outbox.ACCOUNT_KIND,
                    to_email=email,
                    to_name=name,
                    user_id=user_id,
                    subject=str(subject),
                    text=body,
                    html=html,
                )
            ],
        )

    def normalize(self, email: str) -> str:
        return _ascii_address(super().normalize(email))

    def validate(self, email: str) -> str:
        """An address Tandem can mail, as stored: refused at the field when the part before
        the @ is not ASCII; an internationalised domain (exämple.com) is kept in its ASCII
        form (xn--exmple-cua.com), which mail headers can carry and which signs in the same
        however the domain is typed."""
        if not email.strip().rpartition("@")[0].isascii():
            raise EmailValidateException(NON_ASCII_LOCAL_PART)
        return _ascii_address(super().validate(email))


NON_ASCII_LOCAL_PART = (
    "Tandem cannot send mail to an address with accents or non-Latin letters before the @. "
    "Please use another address, e.g. ada@example.com."
)


def _ascii_address(address: str) -> str:
    """A valid address with its domain in ASCII (punycode) form, lowercased."""
    return email_validator.validate_email(
        address, check_deliverability=False, allow_smtputf8=False
    ).ascii_email.lower()


def _public_links(text: str) -> str:
    """Flask-Security builds its links from the request's host; mails carry the public
    address, `TANDEM_BASE_URL`, like every other mail."""
    base = current_app.config["TANDEM_BASE_URL"].rstrip("/")
    if not text or not has_request_context():
        return text
    return text.replace(request.host_url.rstrip("/"), base)


def render_with_status(template: str, **context: Any) -> Any:
    """Flask-Security's pages; a form sent back with errors answers 422, as ours do."""
    for value in context.values():
        if isinstance(value, forms.UniformAnswers):
            value.restore_safe_errors()
    html = render_template(template, **context)
    has_errors = any(isinstance(value, FlaskForm) and value.errors for value in context.values())
    if request.method == "POST" and has_errors and not template.startswith("security/email/"):
        return html, 422
    return html


def _account_key() -> str:
    """Rate-limit key for sign-in attempts on one account, whatever address they come from."""
    email = (request.form.get("email") or "").strip().lower()
    return f"account:{email or get_remote_address()}"


def _refuse_json() -> None:
    if request.blueprint == "security" and request.is_json:
        raise UnsupportedMediaType(
            "Tandem's account pages take forms sent from their pages, not JSON."
        )


def _mail_key() -> str:
    """Rate-limit key for mails sent to one address on request."""
    email = (request.form.get("email") or "").strip().lower()
    return f"mail-to:{email or get_remote_address()}"


def _on_registered(_sender: Flask, user: Account, form_data: dict[str, Any], **_: Any) -> None:
    session = db_session()
    session.flush()
    accounts.join_organisation(session=session, user_id=user.id, name=form_data["organisation"])


def _on_logged_in(_sender: Flask, user: Account | None = None, **_: Any) -> None:
    """A new CSRF token for the signed-in session: a token seen before sign-in (on a shared
    computer, or planted by another site) is worthless after it. Flask-Security does this at
    sign-out only."""
    session.pop("csrf_token", None)
    g.pop("csrf_token", None)


def _on_logged_out(_sender: Flask, user: Account | None = None, **_: Any) -> None:
    """Sign-out ends the session on the server, not only in this browser: a new uniquifier
    makes every session and remember-me cookie issued before it worthless (on every device,
    as a person signing out of a shared computer expects)."""
    if user is None or not getattr(user, "id", None):
        return
    current_app.extensions["security"].datastore.set_uniquifier(user)


def init_app(app: Flask) -> None:
    for key, value in security_defaults(app).items():
        app.config.setdefault(key, value)
    datastore = SQLAlchemySessionUserDatastore(
        LocalProxy(db_session),  # type: ignore[arg-type]
        Account,
        None,  # type: ignore[arg-type]  # the role is a column, see Account.roles
    )
    security = Security(
        app,
        datastore,
        login_form=forms.TandemLoginForm,
        register_form=forms.TandemRegisterForm,
        forgot_password_form=forms.TandemForgotPasswordForm,
        reset_password_form=forms.TandemResetPasswordForm,
        change_password_form=forms.TandemChangePasswordForm,
        send_confirmation_form=forms.TandemSendConfirmationForm,
        two_factor_setup_form=forms.TandemTwoFactorSetupForm,
        two_factor_verify_code_form=forms.TandemTwoFactorVerifyCodeForm,
        two_factor_rescue_form=forms.TandemTwoFactorRescueForm,
        mail_util_cls=TandemMailUtil,
        password_util_cls=TandemPasswordUtil,
        totp_cls=OneTimeTotp,
        render_template=render_with_status,
    )
    # The account pages are HTML forms and nothing else: no JSON sign-in, so no bearer token
    # is ever handed out (the partner API has its own scoped tokens), and no token signs in.
    security.want_json(lambda _request: False)
    app.before_request(_refuse_json)
    csrf.init_app(app)
    user_registered.connect(_on_registered, app)
    user_logged_in.connect(_on_logged_in, app)
    user_logged_out.connect(_on_logged_out, app)

    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=app.config.get("REDIS_URL") or "memory://",
        key_prefix=app.config["RATELIMIT_KEY_PREFIX"],
        strategy="moving-window",
    )
    app.extensions["tandem.limiter"] = limiter
    per_account = limiter.limit(
        app.config["TANDEM_SIGNIN_LIMIT_ACCOUNT"], key_func=_account_key, methods=["POST"]
    )
    per_address = limiter.limit(app.config["TANDEM_SIGNIN_LIMIT_ADDRESS"], methods=["POST"])
    for endpoint in (
        "security.login",
        "security.forgot_password",
        "security.two_factor_token_validation",
    ):
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = per_address(per_account(app.view_functions[endpoint]))
    # Pages that mail an address on request: at most a few mails per address, whoever asks
    # (counted when the page answered as done, so typing mistakes cost nothing).
    mails_per_account = limiter.shared_limit(
        app.config["TANDEM_ACCOUNT_MAIL_LIMIT"],
        scope="account-mail",
        key_func=_mail_key,
        methods=["POST"],
        deduct_when=lambda response: response.status_code < 400,
    )
    for endpoint in ("security.forgot_password", "security.send_confirmation", "security.register"):
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = mails_per_account(app.view_functions[endpoint])
    # The account pages commit once per request, as every portal page does: what the hooks
    # above write (the outbox row of a mail, a new uniquifier at sign-out) is kept with the
    # page's answer, and dropped with an error.
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.startswith(f"{app.config['SECURITY_BLUEPRINT_NAME']}."):
            app.view_functions[endpoint] = one_transaction(view)


def limiter() -> Limiter:
    return current_app.extensions["tandem.limiter"]
