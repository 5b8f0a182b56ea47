"""Two-step verification: TOTP with replay protection, recovery codes, and the sign-in step."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from idp.accounts.models import RecoveryCode
from idp.accounts.models import Resident
from idp.db import utcnow
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import Inputs
from tests.helpers.accounts import post_form
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags
from tests.helpers.accounts import totp_code
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import tokens_for

EMAIL = "hanako@example.jp"


@pytest.fixture(autouse=True)
def step_aligned_clock():
    """Start each test 1 s into a 30-second TOTP step, with the clock running, so a test never
    crosses a step boundary by accident (a code computed just before one would then be two
    steps old at the server)."""
    start = dt.datetime.fromtimestamp((int(time.time()) // 30 + 1) * 30 + 1, dt.UTC)
    with freeze_time(start, tick=True):
        yield


@pytest.fixture
def resident(app):
    return factories.resident(EMAIL)


def row() -> Resident:
    db.session.expire_all()
    return db.session.scalar(select(Resident).where(Resident.email == EMAIL))


def secret_on(html: str) -> str:
    return re.search(r'class="secret-key"><code>([A-Z2-7 ]+)</code>', html).group(1).replace(
        " ", "")


def enable(client, at: float | None = None) -> tuple[str, list[str]]:
    """Turn TOTP on from the account page; returns the secret and the recovery codes."""
    page = client.get("/account/security/totp")
    assert page.status_code == 200
    secret = secret_on(page.text)
    response = client.post("/account/security/totp", data={
        "code": totp_code(secret, at), "password": factories.PASSWORD,
        "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 200, response.text
    codes = re.findall(r"<li><code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code></li>",
                       response.text)
    return secret, codes


def sign_out(client):
    client.post("/logout", data={"csrf_token": factories.csrf(client.get("/").text)})


def second_step(client, code: str):
    page = client.get("/login/second-factor")
    assert page.status_code == 200, page.headers
    return client.post("/login/second-factor", data={"code": code, "action": "verify",
                                                     "csrf_token": factories.csrf(page.text)})


@pytest.fixture
def enrolled(client, resident):
    """A resident with TOTP on, signed out; yields the secret and recovery codes."""
    sign_in(client)
    # Enrol in the previous time step, so the codes of the current one are still free.
    secret, codes = enable(client, time.time() - 30)
    sign_out(client)
    return secret, codes


def test_setup_page_shows_a_qr_code_and_the_key(client, resident):
    """Test that the setup page has an inline SVG QR code, the key in text, and labelled fields."""
    sign_in(client)
    page = client.get("/account/security/totp")
    assert 'src="data:image/svg+xml;base64,' in page.text
    assert len(secret_on(page.text)) == 32
    assert Inputs(page.text).unlabelled() == []
    assert "<script" not in page.text and "style=" not in page.text


def test_setup_keeps_the_same_key_while_the_resident_scans(client, resident):
    """Test that reloading the setup page keeps the key (a scanned QR code stays valid)."""
    sign_in(client)
    first = secret_on(client.get("/account/security/totp").text)
    assert secret_on(client.get("/account/security/totp").text) == first


def test_enabling_needs_a_valid_code_and_the_password(client, resident):
    """Test that TOTP is turned on only with a current code and the password, and gives 10 codes."""
    sign_in(client)
    page = client.get("/account/security/totp")
    secret = secret_on(page.text)
    bad_code = client.post("/account/security/totp", data={
        "code": "000000" if totp_code(secret) != "000000" else "111111",
        "password": factories.PASSWORD, "csrf_token": factories.csrf(page.text)})
    assert bad_code.status_code == 400 and 'id="code-error"' in bad_code.text
    bad_password = client.post("/account/security/totp", data={
        "code": totp_code(secret), "password": "wrong password",
        "csrf_token": factories.csrf(page.text)})
    assert bad_password.status_code == 400 and 'id="password-error"' in bad_password.text
    assert row().totp_enabled is False
    _, codes = enable(client)
    assert row().totp_enabled is True
    assert len(codes) == len(set(codes)) == 10
    stored = list(db.session.scalars(select(RecoveryCode.code_digest)))
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert len(tags("resident:totp:enable")) == 1


def test_sign_in_asks_for_the_code_after_the_password(client, enrolled):
    """Test that the right password alone does not sign in: the code page comes first."""
    response = factories.Browser(client).login()
    assert response.headers["Location"].endswith("/login/second-factor")
    assert client.get("/account").status_code == 303
    assert tags("resident:login:success")[-1].data["amr"] == ["pwd"]  # only the enrolment login


def test_right_code_completes_the_sign_in(client, enrolled):
    """Test that a current code signs in, audited with amr pwd+otp+mfa."""
    secret, _ = enrolled
    factories.Browser(client).login()
    response = second_step(client, totp_code(secret))
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    assert tags("resident:login:success")[-1].data["amr"] == ["pwd", "otp", "mfa"]


def test_id_token_says_how_the_resident_signed_in(client, enrolled):
    """Test that the ID token's amr carries otp after a sign-in with the second factor."""
    secret, _ = enrolled
    factories.Browser(client).login()
    second_step(client, totp_code(secret))
    issued = tokens_for(client, factories.rp(), scope="openid")
    assert jwt_claims(issued["id_token"])["amr"] == ["pwd", "otp", "mfa"]


def test_wrong_code_is_refused(client, enrolled):
    """Test that a wrong code keeps the resident signed out and is audited."""
    secret, _ = enrolled
    factories.Browser(client).login()
    wrong = "123456" if totp_code(secret) != "123456" else "654321"
    response = second_step(client, wrong)
    assert response.status_code == 401
    assert client.get("/account").status_code == 303
    assert [e.data["reason"] for e in tags("resident:login:otp_failure")] == ["bad_code"]


def test_same_code_cannot_be_used_twice(client, enrolled):
    """Test that a code accepted once is refused again within its 30-second window."""
    secret, _ = enrolled
    code = totp_code(secret)
    factories.Browser(client).login()
    assert second_step(client, code).status_code == 302
    sign_out(client)
    factories.Browser(client).login()
    response = second_step(client, code)
    assert response.status_code == 401
    assert "すでに使用" in response.text
    assert client.get("/account").status_code == 303


def test_code_outside_the_drift_window_is_refused(client, enrolled):
    """Test that a code from two steps (60 s) ago is refused."""
    secret, _ = enrolled
    factories.Browser(client).login()
    assert second_step(client, totp_code(secret, time.time() - 90)).status_code == 401


def test_code_one_step_old_is_accepted(client, resident):
    """Test that a code of the previous step (the phone's clock is behind) is accepted."""
    start = utcnow()
    with freeze_time(start) as frozen:
        sign_in(client)
        secret, _ = enable(client)
        sign_out(client)
        frozen.tick(dt.timedelta(seconds=90))
        factories.Browser(client).login()
        one_step_old = totp_code(secret, time.time() - 30)
        assert second_step(client, one_step_old).status_code == 302


def test_recovery_code_works_once(client, enrolled):
    """Test that a recovery code signs in once, in any case and spacing, and not again."""
    _, codes = enrolled
    factories.Browser(client).login()
    assert second_step(client, codes[0].lower().replace("-", " ")).status_code == 302
    assert tags("resident:recovery_code:use")[0].data == {"left": 9}
    sign_out(client)
    factories.Browser(client).login()
    assert second_step(client, codes[0]).status_code == 401
    assert second_step(client, codes[1]).status_code == 302


def test_too_many_wrong_codes_lock_the_second_step(client, enrolled):
    """Test that after 10 failures even the right code is refused for 15 minutes."""
    secret, _ = enrolled
    start = utcnow()
    with freeze_time(start) as frozen:
        factories.Browser(client).login()
        for _ in range(10):
            second_step(client, "000000" if totp_code(secret) != "000000" else "111111")
        response = second_step(client, totp_code(secret))
        assert response.status_code == 429
        assert client.get("/account").status_code == 303
        frozen.tick(dt.timedelta(minutes=16))
        factories.Browser(client).login()
        assert second_step(client, totp_code(secret)).status_code == 302


def test_the_count_cannot_be_reset_by_an_old_cookie(client, enrolled):
    """Test that failures are counted on the server: a fresh password step does not reset them."""
    secret, _ = enrolled
    for _ in range(10):
        factories.Browser(client).login()
        second_step(client, "000000" if totp_code(secret) != "000000" else "111111")
    factories.Browser(client).login()
    assert second_step(client, totp_code(secret)).status_code == 429


def test_waiting_step_expires(client, enrolled):
    """Test that the code page expires 5 minutes after the password was entered."""
    secret, _ = enrolled
    start = utcnow()
    with freeze_time(start) as frozen:
        factories.Browser(client).login()
        frozen.tick(dt.timedelta(minutes=6))
        assert client.get("/login/second-factor").headers["Location"].endswith("/login")


def test_cancel_returns_to_the_login_page(client, enrolled):
    """Test that Cancel forgets the first step and signs nobody in."""
    factories.Browser(client).login()
    page = client.get("/login/second-factor")
    response = client.post("/login/second-factor", data={
        "action": "cancel", "csrf_token": factories.csrf(page.text)})
    assert "/login" in response.headers["Location"]
    assert client.get("/login/second-factor").headers["Location"].endswith("/login")


def test_second_step_continues_the_authorization(client, enrolled):
    """Test that an authorization request waiting at sign-in continues after the code."""
    secret, _ = enrolled
    rp = factories.rp()
    _, challenge = factories.pkce_pair()
    browser = factories.Browser(client)
    response = browser.authorize(rp, code_challenge=challenge, code_challenge_method="S256")
    uid = factories.query(response.headers["Location"])["interaction"]
    assert browser.login(interaction=uid).headers["Location"].endswith("/login/second-factor")
    response = second_step(client, totp_code(secret))
    assert response.headers["Location"].endswith(f"/authorize/continue/{uid}")


def test_disabling_needs_the_password(client, enrolled):
    """Test that a wrong password keeps TOTP on; the right one turns it off and drops the codes."""
    secret, _ = enrolled
    factories.Browser(client).login()
    second_step(client, totp_code(secret))
    post_form(client, "/account/security", {"password": "wrong password"},
              action="/account/security/totp/disable")
    assert row().totp_enabled is True
    post_form(client, "/account/security", {"password": factories.PASSWORD},
              action="/account/security/totp/disable")
    assert row().totp_enabled is False
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    sign_out(client)
    assert factories.Browser(client).login().headers["Location"].endswith("/")


def test_new_recovery_codes_replace_the_old_ones(client, enrolled):
    """Test that regenerating recovery codes (with the password) makes the old ones useless."""
    secret, old_codes = enrolled
    factories.Browser(client).login()
    second_step(client, totp_code(secret))
    refused = post_form(client, "/account/security", {"password": "wrong"},
                        action="/account/security/recovery-codes")
    assert refused.status_code == 303
    response = post_form(client, "/account/security", {"password": factories.PASSWORD},
                         action="/account/security/recovery-codes")
    new_codes = re.findall(r"<li><code>([0-9A-Z-]{19})</code></li>", response.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    sign_out(client)
    factories.Browser(client).login()
    assert second_step(client, old_codes[0]).status_code == 401
    assert second_step(client, new_codes[0]).status_code == 302


def test_password_reset_does_not_switch_totp_off(client, enrolled):
    """Test that after a password reset, sign-in still asks for the code."""
    from tests.helpers.accounts import link_in
    from tests.helpers.accounts import mails_to

    post_form(client, "/password/reset", {"email": EMAIL})
    link = link_in(mails_to(EMAIL)[-1], "/password/reset/confirm")
    page = client.get(link)
    client.post("/password/reset/confirm", data={
        "token": link.split("token=")[1], "new_password": "a brand new password",
        "new_password_confirm": "a brand new password", "csrf_token": factories.csrf(page.text)})
    response = factories.Browser(client).login(EMAIL, "a brand new password")
    assert response.headers["Location"].endswith("/login/second-factor")


def test_operator_can_reset_a_lost_second_factor(cli, enrolled):
    """Test that `idp users reset-second-factor` turns TOTP off and is audited with the actor."""
    result = cli("users", "reset-second-factor", "--email", EMAIL, "--json")
    assert result.exit_code == 0, result.output
    assert row().totp_enabled is False
    assert tags("resident:totp:disable")[-1].actor == "cli"


def test_operator_reset_of_an_unknown_address_fails(cli, resident):
    """Test that the command exits non-zero for an address no resident uses."""
    result = cli("users", "reset-second-factor", "--email", "nobody@example.jp")
    assert result.exit_code == 1
    assert "no resident" in result.output
