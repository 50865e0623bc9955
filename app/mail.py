"""The mail layer: build a multipart message and deliver it, to files or over SMTP.

The embedded default writes each message as an `.eml` file under `instance/mail/` and logs a
line, so a trial needs no mail server. Setting `MAIL_SERVER` sends over SMTP instead
(STARTTLS with `MAIL_USE_TLS`, implicit TLS with `MAIL_USE_SSL`, optional login).

The outbox sender (`send_pending`) opens one SMTP connection per run, then takes one due row
at a time, each in its own short transaction, right before sending it. A sender killed
mid-run holds only the row it was sending; every other row stays pending and the next run
sends it at once.

How long a claimed row is held (`LEASE`) follows from the SMTP timeout: every blocking socket
operation gives up after `SMTP_TIMEOUT_S` (30 s; `sendall` counts the whole message as one).
The connection is opened and greeted (EHLO, STARTTLS, login) before a row is claimed, so one
row costs at most five operations: MAIL, RCPT (one recipient), DATA, the message with its
final reply, and RSET after a refusal, i.e. 150 s, plus marking the row (the database waits
at most 30 s for a lock). Five minutes covers that with room for clocks that differ between
machines; a shorter lease would risk sending a row again while its first sender is still
waiting for the server's reply. Before, a run claimed 100 rows up front and the lease had to
cover the whole batch (10 minutes), which every one of them then waited after a crash.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from flask import current_app
from markupsafe import escape
from sqlmodel import Session, col, select

from app import db, unsubscribe
from app.services import outbox
from models import Notification, NotificationStatus, User, utcnow

log = logging.getLogger(__name__)

SMTP_TIMEOUT_S = 30
LEASE = timedelta(minutes=5)

Recipient = str | tuple[str, str]


def one_line(text: str) -> str:
    """Header text on one line: names and titles people typed may hold line breaks."""
    return " ".join(str(text).split())


def address(recipient: Recipient) -> str:
    """`"Name" <email>` with the name quoted as needed, or a bare address."""
    if isinstance(recipient, tuple):
        name, email = recipient
        return formataddr((one_line(name), one_line(email)))
    return one_line(recipient)


def build_message(
    *,
    to: Recipient,
    subject: str,
    text: str,
    html: str | None = None,
    sender: str | None = None,
) -> EmailMessage:
    """A plain-text message with an HTML alternative, with Date, Message-ID and From set."""
    sender = one_line(sender or current_app.config["MAIL_DEFAULT_SENDER"])
    message = EmailMessage()
    message["From"] = sender
    message["To"] = address(to)
    message["Subject"] = one_line(subject)
    message["Date"] = format_datetime(utcnow())
    domain = sender.rsplit("@", 1)[-1].strip(">") if "@" in sender else "tandem.invalid"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def mail_dir() -> Path:
    return Path(
        current_app.config.get("TANDEM_MAIL_DIR") or Path(current_app.instance_path) / "mail"
    )


def deliver(message: EmailMessage, *, smtp: smtplib.SMTP | None = None) -> None:
    """Send now: over SMTP when `MAIL_SERVER` is set (on `smtp` when given, a connection the
    caller keeps open for a batch), otherwise into the mail folder."""
    config = current_app.config
    if config.get("MAIL_SERVER"):
        if smtp is not None:
            smtp.send_message(message)
        else:
            with connect() as connection:
                connection.send_message(message)
        log.info("Mailed %r to %s", message["Subject"], message["To"])
        return
    folder = mail_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{stamp}-{message['Message-ID'].strip('<>').split('@')[0]}.eml"
    path.write_bytes(bytes(message))
    log.info("Wrote mail %r to %s: %s", message["Subject"], message["To"], path)


def connect() -> smtplib.SMTP:
    """An open, authenticated SMTP connection as the `MAIL_*` settings describe."""
    config = current_app.config
    host, port = config["MAIL_SERVER"], int(config.get("MAIL_PORT") or 0)
    timeout = SMTP_TIMEOUT_S
    if config.get("MAIL_USE_SSL"):
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port or 465, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, port or 25, timeout=timeout)
    try:
        if config.get("MAIL_USE_TLS") and not config.get("MAIL_USE_SSL"):
            smtp.starttls(context=ssl.create_default_context())
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
        smtp.ehlo_or_helo_if_needed()  # greeted here, not while a row is claimed
    except BaseException:
        smtp.close()
        raise
    return smtp


@dataclass(frozen=True)
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def _classify(exc: Exception) -> tuple[bool, str]:
    """(permanent?, reason) for a failed delivery: 5xx replies and refused addresses are
    permanent; 4xx replies, timeouts and an unreachable server are worth retrying."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        reason = "; ".join(
            f"{address}: {code} {message.decode(errors='replace')}"
            for address, (code, message) in exc.recipients.items()
        )
        return all(code >= 500 for code in codes), f"recipient refused: {reason}"
    if isinstance(exc, smtplib.SMTPResponseException):
        message = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return exc.smtp_code >= 500, f"{exc.smtp_code} {message}"
    if isinstance(exc, ValueError):
        return True, f"the message could not be built: {exc}"
    return False, f"{type(exc).__name__}: {exc}"


def message_for(notification: Notification, *, unsubscribe_url: str | None = None) -> EmailMessage:
    """The outbox row as a message. Its Message-ID is derived from the row, so a message sent
    again after a crash carries the same id and mail clients can show it once. With
    `unsubscribe_url`, the footer and the List-Unsubscribe headers (RFC 2369, RFC 8058
    one-click) carry the recipient's signed link."""
    text, html = notification.text_body, notification.html_body
    if unsubscribe_url:
        text = f"{text}\n\n--\nStop match emails: {unsubscribe_url}\n"
        if html:
            html = (
                f'{html}\n<p style="color:#4b5563;font-size:13px">'
                f'<a href="{escape(unsubscribe_url)}">Stop match emails</a></p>'
            )
    message = build_message(
        to=(notification.recipient_name, notification.recipient_email),
        subject=notification.subject,
        text=text,
        html=html or None,
    )
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    domain = sender.rsplit("@", 1)[-1].strip("> ") if "@" in sender else "tandem.invalid"
    key = hashlib.sha256(notification.idempotency_key.encode()).hexdigest()[:16]
    del message["Message-ID"]
    message["Message-ID"] = f"<tandem.{notification.id}.{key}@{domain}>"
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message


def _unsubscribe_urls(session: Session, claimed: list[Notification]) -> dict[int, str]:
    """Each claimed row's recipient's signed unsubscribe link, when they have an account."""
    emails = {n.recipient_email.lower() for n in claimed}
    users = session.exec(select(User).where(col(User.email).in_(emails))).all()
    by_email = {u.email: u for u in users}
    by_id = {u.id: u for u in users}
    urls: dict[int, str] = {}
    for notification in claimed:
        if notification.kind == outbox.ACCOUNT_KIND:
            continue
        user = by_id.get(notification.user_id) or by_email.get(notification.recipient_email.lower())
        if user is not None and user.id is not None and notification.id is not None:
            urls[notification.id] = unsubscribe.url_for_user(user.id, user.email)
    return urls


def send_pending(*, limit: int = 100) -> SendReport:
    """Deliver up to `limit` due outbox rows, one at a time: claim a row (its own short
    transaction), send it, then mark it sent / retry later / failed, each row right after the
    last. Safe to run from several threads or processes."""
    engine = db.engine()
    over_smtp = bool(current_app.config.get("MAIL_SERVER"))
    sent = retried = failed = 0
    # One SMTP connection for the run. If the server cannot be reached at all, the rest of
    # the run's rows wait for a later run instead of each waiting out its own timeout.
    smtp: smtplib.SMTP | None = None
    unreachable: Exception | None = None
    try:
        for _ in range(limit):
            cannot_connect = unreachable
            if over_smtp and smtp is None and unreachable is None:
                with Session(engine) as session:
                    if not outbox.has_due(session=session, lease=LEASE):
                        break
                try:
                    smtp = connect()
                except OSError as exc:
                    cannot_connect = unreachable = exc
                except smtplib.SMTPException as exc:
                    cannot_connect = exc
            with Session(engine, expire_on_commit=False) as session:
                notification = outbox.claim_next(session=session, lease=LEASE)
                session.commit()
                if notification is None:
                    break
                unsubscribe_url = _unsubscribe_urls(session, [notification]).get(
                    notification.id or 0
                )
            try:
                if cannot_connect is not None:
                    raise cannot_connect
                deliver(message_for(notification, unsubscribe_url=unsubscribe_url), smtp=smtp)
            except (OSError, ValueError, smtplib.SMTPException) as exc:
                if isinstance(exc, OSError | smtplib.SMTPServerDisconnected) and smtp:
                    smtp.close()
                    smtp = None
                permanent, reason = _classify(exc)
                with Session(engine) as session:
                    if permanent:
                        outbox.mark_failed(
                            session=session, notification_id=notification.id, error=reason
                        )
                        failed += 1
                    else:
                        status = outbox.mark_temporary_failure(
                            session=session, notification_id=notification.id, error=reason
                        )
                        failed += status == NotificationStatus.failed
                        retried += status == NotificationStatus.pending
                    session.commit()
                log.warning(
                    "Mail %s to %s not sent: %s",
                    notification.id,
                    notification.recipient_email,
                    reason,
                )
                continue
            with Session(engine) as session:
                outbox.mark_sent(session=session, notification_id=notification.id)
                session.commit()
            sent += 1
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
    return SendReport(sent=sent, retried=retried, failed=failed)
