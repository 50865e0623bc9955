"""Every link Tandem mails is followed in a real browser, on a server that is not on port 5000.

The first test starts the portal the way the README says, `PORT=<port> make run`, as a
separate process on a fresh instance folder and with no TANDEM_BASE_URL: the links in its
mails must reach that port. The others use the in-process `live_server` (a random port).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from models import (
    NotificationPreference,
    Offer,
    OfferKind,
    OfferStatus,
    Organisation,
    OrganisationKind,
    PublicationTerms,
    Role,
    User,
    utcnow,
)
from tests.conftest import TEST_PASSWORD
from tests.conftest import test_password_hash as shared_password_hash
from tests.e2e.conftest import DESKTOP, LiveServer, mail_link, mail_text, mails, wait_for_mail

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "juniper-lighthouse-saffron-17"
NEW_PASSWORD = "orchard-basalt-meridian-64"
# `make run` migrates, loads the demo (which encodes it with the real model), then serves:
# about a minute on a busy two-core machine.
MAKE_RUN_DEADLINE_S = 300.0
MAIL_DEADLINE_S = 30.0
# What `make run` must not inherit from the test run: with none of these set it serves from
# the instance folder alone, as on a fresh checkout.
NOT_INHERITED = (
    "TANDEM_BASE_URL",
    "FLASK_RUN_HOST",
    "FLASK_RUN_PORT",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "TANDEM_ENV",
    "TANDEM_MAIL_DIR",
    "TANDEM_QUEUE",
    "TANDEM_QUEUE_PATH",
    "TANDEM_QUEUE_THREADS",
    "MAIL_SERVER",
    "MAKEFLAGS",
    "MFLAGS",
)
LINK = re.compile(r"https?://[^\s<>\"']+")
HREF = re.compile(r'href="(https?://[^"]+)"')  # mailto: links write to a person


def _free_port() -> int:
    """A port nothing listens on now, and not Flask's default."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port != 5000:
            return port


class MakeRun:
    """`make run` in its own process group. A thread reads what it prints, line by line, so
    the test waits for what the server says (it is listening, it wrote a mail) up to a
    deadline, and never sleeps."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="make-run-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<make run exited>")
            self._changed.notify_all()

    def wait_for(self, pattern: str, deadline_s: float) -> re.Match[str]:
        """The first line printed (since the start) that matches `pattern`."""
        wanted = re.compile(pattern)
        give_up = time.monotonic() + deadline_s
        with self._changed:
            while True:
                for line in self.lines:
                    if found := wanted.search(line):
                        return found
                remaining = give_up - time.monotonic()
                if remaining <= 0 or "<make run exited>" in self.lines:
                    tail = "\n".join(self.lines[-40:])
                    raise AssertionError(f"`make run` never printed {pattern!r}:\n{tail}")
                self._changed.wait(timeout=remaining)

    def stop(self) -> None:
        """End make and everything it started (flask run and its queue threads)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self._reader.join(timeout=15)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[MakeRun, int]]:
    """`PORT=<free port> make run` on a fresh instance folder (database, queue, mail)."""
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update(PORT=str(port), TANDEM_INSTANCE_PATH=str(tmp_path / "instance"))
    # `-o install`: the virtual environment the tests run in is the one make would build.
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-o", "install", "run"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    served = MakeRun(process)
    try:
        yield served, port
    finally:
        served.stop()


def _mail_written(subject_word: str, email: str) -> str:
    """The server's log line for a mail it wrote (app/mail.py), capturing the file."""
    return rf"Wrote mail .*(?i:{subject_word}).* to .*{re.escape(email)}.*: (\S+\.eml)$"


def _eml(path: str) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(Path(path).read_bytes())
    assert isinstance(message, EmailMessage)
    return message


def _follow_every_link(page: Page, message: EmailMessage, base: str) -> list[str]:
    """Open each link of the mail (text and HTML parts) in the browser: each must be on
    `base` and answer with a page, not an error. Returns the links, text part first."""
    html_part = message.get_body(preferencelist=("html",))
    html = html_part.get_content() if html_part is not None else ""
    links = list(dict.fromkeys(LINK.findall(mail_text(message)) + HREF.findall(html)))
    assert links, "the mail carries no link"
    for link in links:
        assert link.startswith(base + "/"), f"{link} does not lead to the portal at {base}"
        response = page.goto(link.replace("&amp;", "&"))
        assert response is not None and response.ok, f"{link} answered {response.status}"
    return links


def test_make_run_on_another_port_mails_links_that_reach_it(
    page: Page, make_run: tuple[MakeRun, int]
) -> None:
    served, port = make_run
    base = f"http://127.0.0.1:{port}"
    email = "grace.hopper@example.com"
    served.wait_for(rf"Running on http://127\.0\.0\.1:{port}", MAKE_RUN_DEADLINE_S)

    page.goto(base + "/")
    page.get_by_role("banner").get_by_role("link", name="Sign up").click()
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("An academic").check()
    page.get_by_label("Organisation").fill("Northbridge University")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Retype password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".flashes")).to_contain_text(f"we sent a link to {email}")

    # The server logs each mail it writes, with the file: the link in it names this port.
    written = served.wait_for(_mail_written("confirm", email), MAIL_DEADLINE_S)
    welcome = _eml(written.group(1))
    link = mail_link(welcome, "/confirm/")
    assert link.startswith(f"{base}/confirm/"), link
    page.goto(link)
    expect(page.locator(".flashes")).to_contain_text("Your email address is confirmed")
    assert page.url.startswith(base + "/")

    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page.url.startswith(base + "/") and "/login" not in page.url
    page.get_by_role("button", name="Sign out").click()

    # A forgotten password: the reset link reaches this port too.
    page.get_by_role("banner").get_by_role("link", name="Sign in").click()
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a reset link").click()
    expect(page.locator(".flashes")).to_contain_text("we sent it a link to choose a new password")
    written = served.wait_for(_mail_written("reset", email), MAIL_DEADLINE_S)
    page.goto(mail_link(_eml(written.group(1)), "/reset/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("Retype password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save my new password").click()
    expect(page.locator(".flashes")).to_contain_text("Your password is changed")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _sign_in(page: Page, base: str, email: str, password: str = TEST_PASSWORD) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _sign_up_as_ada(page: Page, base: str, email: str) -> None:
    """Ada Lovelace, a company member, signs up through the sign-up page."""
    page.goto(base + "/register")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("A company member").check()
    page.get_by_label("Organisation").fill("Analytical Engines Ltd")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Retype password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()


def test_a_resent_confirmation_link_and_the_password_notices_reach_the_portal(
    page: Page, live_server: LiveServer
) -> None:
    base, email = live_server.url, "ada@example.com"
    _sign_up_as_ada(page, base, email)
    wait_for_mail(live_server, "confirm")

    # The first mail got lost: ask for the link again from the sign-in page.
    page.get_by_role("link", name="Did not get the confirmation email?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Send the confirmation link again")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Send the link again").click()
    expect(page.locator(".flashes")).to_contain_text(
        f"If {email} has a Tandem account waiting for confirmation, we sent it a new link"
    )
    resent = wait_for_mail(live_server, "confirm", count=2)
    assert _follow_every_link(page, resent, base) == [mail_link(resent, "/confirm/")]
    expect(page.locator(".flashes")).to_contain_text("Your email address is confirmed")

    # Changing the password mails a notice whose link leads to the reset page.
    _sign_in(page, base, email, PASSWORD)
    page.goto(base + "/change")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Retype new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    notice = wait_for_mail(live_server, "changed")
    _follow_every_link(page, notice, base)
    page.goto(mail_link(notice, "/reset"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset your password")

    # Resetting it mails a link, then a notice; every link in both works.
    page.get_by_role("button", name="Sign out").click()
    page.goto(base + "/reset")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a reset link").click()
    instructions = wait_for_mail(live_server, "Reset your Tandem password")
    _follow_every_link(page, instructions, base)
    page.goto(mail_link(instructions, "/reset/"))
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Retype password").fill(PASSWORD)
    page.get_by_role("button", name="Save my new password").click()
    expect(page.locator(".flashes")).to_contain_text("Your password is changed")
    _follow_every_link(page, wait_for_mail(live_server, "was reset"), base)


def _people_and_an_offer(server: LiveServer) -> None:
    """A company member with an open offer, and an academic with no proposal yet."""
    with server.session() as session:
        helios = Organisation(
            name="Helios Compute",
            kind=OrganisationKind.company,
            email_domains=["helios.example.com"],
            verified=True,
        )
        kestrel = Organisation(
            name="Kestrel University",
            kind=OrganisationKind.university,
            email_domains=["kestrel.example.org"],
            verified=True,
        )
        session.add_all([helios, kestrel])
        session.flush()
        for email, name, role, organisation in [
            ("sam.reyes@helios.example.com", "Sam Reyes", Role.company, helios),
            ("grace@kestrel.example.org", "Grace Hopper", Role.academic, kestrel),
        ]:
            session.add(
                User(
                    email=email,
                    name=name,
                    role=role,
                    organisation_id=organisation.id,
                    password_hash=shared_password_hash(),
                    confirmed_at=utcnow(),
                    notification_preference=NotificationPreference.instant,
                )
            )
        session.add(
            Offer(
                kind=OfferKind.compute,
                title="H100 hours for protein structure research",
                description="Up to 4,000 H100 GPU hours per project for academic groups "
                "training protein structure prediction and molecular modelling networks, "
                "with open publication.",
                gpu_type="H100",
                gpu_memory_gb=80,
                gpu_hours_budget=20_000,
                max_hours_per_project=4_000,
                max_projects=5,
                publication_terms=PublicationTerms.allowed,
                organisation_id=helios.id,
                status=OfferStatus.open,
            )
        )
        session.commit()


def _post_proposal(page: Page) -> None:
    page.get_by_role("link", name="Post your first proposal").click()
    page.get_by_label("Title").fill("Learning protein structure from sparse cryo-EM maps")
    page.get_by_label("Abstract").fill(
        "We will train protein structure prediction networks that use sparse cryo-EM density "
        "maps as extra evidence, to model molecular structures that sequence-only methods "
        "get wrong. Results and code will be published openly."
    )
    page.get_by_label("Research areas").fill("computational biology, structure prediction")
    page.get_by_label("GPU hours needed").fill("3000")
    page.get_by_label("Minimum GPU memory (GB)").fill("40")
    page.get_by_label("Duration (months)").fill("6")
    page.get_by_label("I must be free to publish the results").check()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Learning protein structure from sparse cryo-EM maps"
    )


def test_match_mails_link_to_the_dashboard_the_offer_and_a_working_unsubscribe(
    browser: Browser, live_server: LiveServer
) -> None:
    base = live_server.url
    _people_and_an_offer(live_server)
    academic_context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    company_context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        academic, company = academic_context.new_page(), company_context.new_page()
        _sign_in(academic, base, "grace@kestrel.example.org")
        _sign_in(company, base, "sam.reyes@helios.example.com")
        _post_proposal(academic)

        # Both sides hear of the new match; each link in their mail opens on this server.
        wait_for_mail(live_server, "New match", count=2)
        new_matches = {
            m["To"].addresses[0].addr_spec: m
            for m in mails(live_server.mail_dir)
            if "New match" in str(m["Subject"])
        }
        to_academic = new_matches["grace@kestrel.example.org"]
        to_company = new_matches["sam.reyes@helios.example.com"]
        links = _follow_every_link(academic, to_academic, base)
        assert f"{base}/dashboard" in links and f"{base}/account" in links
        assert any(link.startswith(f"{base}/offers/") for link in links)
        _follow_every_link(company, to_company, base)

        # The dashboard link lands on the academic's dashboard, with the match on it.
        academic.goto(mail_link(to_academic, "/dashboard"))
        expect(academic.locator("main")).to_contain_text("H100 hours for protein structure")

        # Both say they are interested: the introduction mails link to each dashboard.
        academic.get_by_role("button", name=re.compile("interested", re.IGNORECASE)).first.click()
        company.goto(mail_link(to_company, "/dashboard"))
        expect(company.locator("main")).to_contain_text("Learning protein structure")
        company.get_by_role("button", name=re.compile("interested", re.IGNORECASE)).first.click()
        wait_for_mail(live_server, "Introduction", count=2)
        for message in mails(live_server.mail_dir):
            if "Introduction" not in str(message["Subject"]):
                continue
            reader = academic if "grace@" in str(message["To"]) else company
            _follow_every_link(reader, message, base)
            reader.goto(mail_link(message, "/dashboard"))
            expect(reader.locator("main")).to_contain_text("Learning protein structure")

        # The one-click unsubscribe link works without signing in, in a fresh browser.
        unsubscribe = mail_link(to_academic, "/unsubscribe/")
        stranger = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        try:
            page = stranger.new_page()
            page.goto(unsubscribe)
            expect(page.locator("main")).to_contain_text("grace@kestrel.example.org")
            page.get_by_role("button", name="Unsubscribe from match emails").click()
            expect(page.locator("main")).to_contain_text("we will not email")
        finally:
            stranger.close()
        with live_server.session() as session:
            grace = session.exec(select(User).where(User.email == "grace@kestrel.example.org"))
            assert grace.one().notification_preference == NotificationPreference.off
        academic.goto(base + "/account")
        expect(academic.get_by_label("No match emails")).to_be_checked()
    finally:
        academic_context.close()
        company_context.close()


def test_the_mail_about_a_sign_up_with_a_taken_address_leads_to_the_portal(
    page: Page, live_server: LiveServer
) -> None:
    """Sign-up with an address that has an account answers as for a new one; the owner is
    mailed instead, and each link of that mail (confirm while unconfirmed, reset once
    confirmed) reaches this server and works."""
    base, email = live_server.url, "ada@example.com"

    def sign_up() -> None:
        _sign_up_as_ada(page, base, email)

    sign_up()
    wait_for_mail(live_server, "confirm")
    sign_up()  # again, before confirming: the mail offers the confirmation link
    waiting = wait_for_mail(live_server, "someone tried to sign up")
    assert _follow_every_link(page, waiting, base) == [mail_link(waiting, "/confirm/")]
    expect(page.locator(".flashes")).to_contain_text("Your email address is confirmed")

    sign_up()  # once more, confirmed: the mail offers a password reset
    confirmed = wait_for_mail(live_server, "someone tried to sign up", count=2)
    assert _follow_every_link(page, confirmed, base) == [mail_link(confirmed, "/reset/")]
    page.goto(mail_link(confirmed, "/reset/"))
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("Retype password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save my new password").click()
    expect(page.locator(".flashes")).to_contain_text("Your password is changed")
