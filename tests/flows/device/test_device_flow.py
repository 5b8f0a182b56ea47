"""RFC 8628 device authorization grant: the kiosk's endpoints and the resident's pages."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from freezegun import freeze_time
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select

from idp.access.models import DeviceCode
from idp.audit.models import AuditEvent
from idp.clients import service as clients
from idp.consent.models import Consent
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.oauth import device
from idp.oauth.device import USER_CODE_ALPHABET
from tests import factories
from tests.factories import Browser
from tests.factories import csrf
from tests.helpers.device import GRANT
from tests.helpers.device import approve
from tests.helpers.device import authorize
from tests.helpers.device import decide
from tests.helpers.device import enter_code
from tests.helpers.device import poll
from tests.helpers.oauth import jwt_claims


@pytest.fixture
def kiosk(app):
    factories.resident()
    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条西4丁目 交差点広場")
    kiosk = factories.RP(client.id, secret, company, redirect_uri="")
    db.session.commit()
    return kiosk


def test_device_authorization_response(client, kiosk):
    """Test that the response has the RFC 8628 §3.2 members with our formats."""
    body = authorize(client, kiosk)
    assert re.fullmatch(f"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}",
                        body["user_code"])
    assert body["verification_uri"] == "http://localhost/device"
    assert body["verification_uri_complete"] == \
        f"http://localhost/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600 and body["interval"] == 5
    assert len(body["device_code"]) >= 43


def test_codes_are_stored_only_as_digests(client, kiosk):
    """Test that neither the device code nor the user code is stored in clear."""
    body = authorize(client, kiosk)
    row = db.session.scalar(select(DeviceCode))
    stored = repr(vars(row))
    assert body["device_code"] not in stored
    assert body["user_code"] not in stored and body["user_code"].replace("-", "") not in stored


def test_a_colliding_user_code_is_drawn_again(client, kiosk, monkeypatch):
    """Test that a user code already stored is never handed out twice: the endpoint draws
    another, and the response and the stored row carry the new one."""
    first = authorize(client, kiosk)
    drawn = iter([first["user_code"], first["user_code"], "BCDF-GHJK"])
    monkeypatch.setattr(device.DeviceAuthorizationEndpoint, "generate_user_code",
                        lambda self: next(drawn))
    body = authorize(client, kiosk)
    assert body["user_code"] == "BCDF-GHJK"
    assert body["verification_uri_complete"].endswith("?user_code=BCDF-GHJK")
    assert device.find_by_user_code("BCDF-GHJK") is not None
    assert db.session.scalar(select(func.count()).select_from(DeviceCode)) == 2


def test_no_free_user_code_is_a_503_and_stores_nothing(client, kiosk, monkeypatch):
    """Test that when every drawn user code collides the kiosk gets temporarily_unavailable."""
    first = authorize(client, kiosk)
    monkeypatch.setattr(device.DeviceAuthorizationEndpoint, "generate_user_code",
                        lambda self: first["user_code"])
    response = client.post("/device_authorization", data={"scope": "openid touch_events"},
                           auth=(kiosk.client_id, kiosk.client_secret))
    assert response.status_code == 503
    assert response.json["error"] == "temporarily_unavailable"
    assert db.session.scalar(select(func.count()).select_from(DeviceCode)) == 1


def test_discovery_advertises_the_device_endpoint(client):
    """Test that discovery names the device authorization endpoint and grant."""
    meta = client.get("/.well-known/openid-configuration").json
    assert meta["device_authorization_endpoint"] == "http://localhost/device_authorization"
    assert GRANT in meta["grant_types_supported"]


def test_settings_change_expiry_and_interval(app, client, kiosk):
    """Test that device_code_ttl and device_poll_interval shape the response."""
    from idp import create_app
    from tests.helpers.app import TEST_SETTINGS

    db.session.rollback()
    other = create_app({**TEST_SETTINGS, "database_url": app.config["SQLALCHEMY_DATABASE_URI"]
                        .replace("postgresql+psycopg://", "postgresql://"),
                        "device_code_ttl": 300, "device_poll_interval": 10})
    with other.app_context():
        body = other.test_client().post("/device_authorization", data={"scope": "openid"},
                                        auth=(kiosk.client_id, kiosk.client_secret)).json
        db.session.remove()
    assert body["expires_in"] == 300 and body["interval"] == 10


def test_client_without_device_grant_is_unauthorized(app, client):
    """Test that an ordinary web client cannot start a device authorization."""
    rp = factories.rp()
    response = client.post("/device_authorization", data={"scope": "openid"},
                           auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 400 and response.json["error"] == "unauthorized_client"


def test_unregistered_scope_is_invalid_scope(client, kiosk):
    """Test that a kiosk cannot ask for resident data it is not registered for."""
    response = client.post("/device_authorization", data={"scope": "openid email"},
                           auth=(kiosk.client_id, kiosk.client_secret))
    assert response.json["error"] == "invalid_scope"


def test_wrong_secret_is_invalid_client(client, kiosk):
    """Test that the device authorization endpoint authenticates the client."""
    response = client.post("/device_authorization", data={"scope": "openid"},
                           auth=(kiosk.client_id, "wrong"))
    assert response.status_code == 401 and response.json["error"] == "invalid_client"


def test_polling_is_pending_until_the_resident_decides(client, kiosk):
    """Test that polls answer authorization_pending while nobody has decided."""
    body = authorize(client, kiosk)
    response = poll(client, kiosk, body["device_code"])
    assert response.status_code == 400 and response.json["error"] == "authorization_pending"


def test_polling_too_fast_is_slow_down_and_the_interval_grows(client, kiosk):
    """Test that a poll inside the interval gets slow_down and the interval grows by 5 s."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        body = authorize(client, kiosk)
        assert poll(client, kiosk, body["device_code"]).json["error"] == "authorization_pending"
        frozen.tick(dt.timedelta(seconds=2))
        assert poll(client, kiosk, body["device_code"]).json["error"] == "slow_down"
        frozen.tick(dt.timedelta(seconds=6))  # > 5 s but < the new 10 s
        assert poll(client, kiosk, body["device_code"]).json["error"] == "slow_down"
        frozen.tick(dt.timedelta(seconds=16))  # > 15 s, the interval after two slow_downs
        assert poll(client, kiosk, body["device_code"]).json["error"] == "authorization_pending"
    assert db.session.scalar(select(DeviceCode.interval)) == 15


def test_approval_yields_tokens_once(client, kiosk):
    """Test that an approved code yields tokens exactly once, then invalid_grant."""
    body = authorize(client, kiosk)
    assert approve(client, body["user_code"]).status_code == 200
    first = poll(client, kiosk, body["device_code"])
    assert first.status_code == 200, first.text
    assert set(first.json["scope"].split()) == {"openid", "touch_events"}
    assert first.json["id_token"] and first.json["access_token"]
    again = poll(client, kiosk, body["device_code"])
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"


def test_device_tokens_carry_the_pairwise_sub(client, kiosk):
    """Test that the kiosk learns the resident's sub for its company, and only that."""
    body = authorize(client, kiosk)
    approve(client, body["user_code"])
    token = poll(client, kiosk, body["device_code"]).json
    info = client.post("/introspect", data={"token": token["access_token"]},
                       auth=(kiosk.client_id, kiosk.client_secret)).json
    assert info["active"] and info["sub"]
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer "
                                                + token["access_token"]}).json
    assert set(userinfo) == {"sub"}


def test_decline_is_access_denied(client, kiosk):
    """Test that a declined request answers access_denied and issues nothing."""
    body = authorize(client, kiosk)
    assert approve(client, body["user_code"], decision="deny").status_code == 200
    response = poll(client, kiosk, body["device_code"])
    assert response.json["error"] == "access_denied"


def test_expired_code_is_expired_token(client, kiosk):
    """Test that a code past expires_in answers expired_token, and cannot be entered."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        body = authorize(client, kiosk)
        frozen.tick(dt.timedelta(seconds=601))
        assert poll(client, kiosk, body["device_code"]).json["error"] == "expired_token"
        page = client.get("/device")
        response = client.post("/device", data={"user_code": body["user_code"],
                                                "csrf_token": csrf(page.text)})
        assert response.status_code == 400


def test_another_clients_device_code_is_invalid_grant(client, kiosk):
    """Test that a kiosk cannot poll with another kiosk's device code."""
    body = authorize(client, kiosk)
    other, secret, _ = kiosks.create_kiosk(kiosk.company_id, "別の画面", "大通公園")
    db.session.commit()
    response = client.post("/token", data={"grant_type": GRANT,
                                           "device_code": body["device_code"]},
                           auth=(other.id, secret))
    assert response.json["error"] == "invalid_grant"


@pytest.mark.parametrize("data", [
    {"grant_type": GRANT},
    {"grant_type": GRANT, "device_code": "made-up"},
    {"grant_type": GRANT, "device_code": "x" * 5000},
])
def test_bad_device_codes(client, kiosk, data):
    """Test that a missing or unknown device code gets a spec error, never a 500."""
    response = client.post("/token", data=data, auth=(kiosk.client_id, kiosk.client_secret))
    assert response.status_code == 400
    assert response.json["error"] in ("invalid_request", "invalid_grant")


@pytest.mark.parametrize("typed", ["lower", "nohyphen", "spaces"])
def test_user_code_is_accepted_in_any_case_with_or_without_hyphen(client, kiosk, typed):
    """Test that the user code is normalised before lookup."""
    body = authorize(client, kiosk)
    code = body["user_code"]
    value = {"lower": code.lower(), "nohyphen": code.replace("-", ""),
             "spaces": f" {code[:4]} {code[5:]} "}[typed]
    assert approve(client, value).status_code == 200
    assert poll(client, kiosk, body["device_code"]).status_code == 200


def test_verification_uri_complete_prefills_but_never_approves(client, kiosk):
    """Test that opening the complete URI only fills in the form (RFC 8628 §5.4)."""
    body = authorize(client, kiosk)
    Browser(client).login()
    page = client.get(body["verification_uri_complete"].replace("http://localhost", ""))
    assert page.status_code == 200
    assert f'value="{body["user_code"]}"' in page.text
    assert poll(client, kiosk, body["device_code"]).json["error"] == "authorization_pending"


def test_consent_page_shows_code_company_location_and_purpose(client, kiosk):
    """Test that the kiosk consent page shows what the resident must check."""
    body = authorize(client, kiosk)
    Browser(client).login()
    page = client.get("/device")
    response = client.post("/device", data={"user_code": body["user_code"],
                                            "csrf_token": csrf(page.text)})
    page = client.get(response.headers["Location"])
    assert body["user_code"] in page.text
    assert "C社" in page.text and "北2条西4丁目 交差点広場" in page.text
    assert "タッチ" in page.text
    assert 'name="decision" value="allow"' in page.text


def test_consent_page_is_shown_even_with_an_earlier_consent(client, kiosk):
    """Test that a second device sign-in shows the consent page again (§5.4)."""
    first = authorize(client, kiosk)
    approve(client, first["user_code"])
    second = authorize(client, kiosk)
    page = client.get("/device")
    response = client.post("/device", data={"user_code": second["user_code"],
                                            "csrf_token": csrf(page.text)})
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and 'value="allow"' in page.text
    assert poll(client, kiosk, second["device_code"]).json["error"] == "authorization_pending"


def test_approval_records_consent_and_audit(client, kiosk):
    """Test that approving stores the consent for the kiosk and an audit event."""
    body = authorize(client, kiosk)
    approve(client, body["user_code"])
    consent = db.session.scalar(select(Consent))
    assert consent.client_id == kiosk.client_id and "touch_events" in consent.scopes
    tags = db.session.scalars(select(AuditEvent.tag)).all()
    assert "device:approve" in tags


def test_wrong_code_is_a_clear_400_and_audited(client, kiosk):
    """Test that an unknown code re-renders the form with a message and is audited."""
    page = client.get("/device")
    response = client.post("/device", data={"user_code": "BCDF-GHJK",
                                            "csrf_token": csrf(page.text)})
    assert response.status_code == 400 and 'role="alert"' in response.text
    assert "device:user_code:failure" in db.session.scalars(select(AuditEvent.tag)).all()


def test_repeated_wrong_codes_are_throttled(client, kiosk):
    """Test that guessing user codes hits a 429 with Retry-After (RFC 8628 §5.1)."""
    page = client.get("/device")
    token = csrf(page.text)
    statuses = [client.post("/device", data={"user_code": f"BCDF-GH{c}{c}",
                                             "csrf_token": token}).status_code
                for c in "JKLMNPQRSTVW"]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    blocked = client.post("/device", data={"user_code": "BCDF-GHZZ", "csrf_token": token})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    assert blocked.mimetype == "text/html"


def test_right_codes_do_not_count_towards_the_limit(client, kiosk):
    """Test that only wrong codes are counted."""
    page = client.get("/device")
    token = csrf(page.text)
    for _ in range(12):
        body = authorize(client, kiosk)
        response = client.post("/device", data={"user_code": body["user_code"],
                                                "csrf_token": token})
        assert response.status_code == 302


def test_revoked_kiosk_is_cut_off(client, kiosk):
    """Test that revoking the kiosk's client fails its pending codes and its tokens."""
    body = authorize(client, kiosk)
    approve(client, body["user_code"])
    clients.revoke_client(kiosk.client_id)
    db.session.commit()
    assert poll(client, kiosk, body["device_code"]).json["error"] == "invalid_client"
    again = client.post("/device_authorization", data={"scope": "openid"},
                        auth=(kiosk.client_id, kiosk.client_secret))
    assert again.json["error"] == "invalid_client"


def test_revoked_kiosk_code_shows_no_longer_connected(client, kiosk):
    """Test that entering a revoked kiosk's code shows the disconnected page."""
    body = authorize(client, kiosk)
    Browser(client).login()
    page = client.get("/device")
    response = client.post("/device", data={"user_code": body["user_code"],
                                            "csrf_token": csrf(page.text)})
    clients.revoke_client(kiosk.client_id)
    db.session.commit()
    assert client.get(response.headers["Location"]).status_code == 403


def test_qr_code_svg_and_png(client, kiosk):
    """Test that the QR endpoints render a code as SVG or PNG and 404 malformed ones."""
    body = authorize(client, kiosk)
    svg = client.get(f"/device/qr/{body['user_code']}.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.data.startswith(b"<svg")
    png = client.get(f"/device/qr/{body['user_code']}.png")
    assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/device/qr/not-a-code.png").status_code == 404
    assert client.get("/device/qr/BCDF-GHJ.svg").status_code == 404
    assert client.get(f"/device/qr/{body['user_code']}.gif").status_code == 404


def qr_svg(uri: str) -> bytes:
    import qrcode
    import qrcode.image.svg

    return qrcode.make(uri, border=2, image_factory=qrcode.image.svg.SvgPathImage).to_string()


def test_qr_code_encodes_verification_uri_complete(client, kiosk):
    """Test that the QR image is exactly the code for verification_uri_complete."""
    body = authorize(client, kiosk)
    lower = body["user_code"].lower().replace("-", "")
    assert client.get(f"/device/qr/{lower}.svg").data == qr_svg(body["verification_uri_complete"])


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_qr_code_tells_nothing_about_which_codes_are_pending(client, kiosk, fmt):
    """Test that a pending code and a well-formed code nobody holds get the same kind of
    answer, each the image of its own URL, without a database read: the QR endpoint is no
    oracle for live user codes around the /device attempt limit (RFC 8628 §5.1)."""
    pending = authorize(client, kiosk)["user_code"]
    unknown = next(c for c in ("BCDF-GHJK", "ZXWV-TSRQ") if c != pending)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        answers = [client.get(f"/device/qr/{code}.{fmt}") for code in (pending, unknown)]
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert statements == []

    def shape(answer):
        return (answer.status_code, answer.mimetype, answer.headers["Cache-Control"],
                sorted(answer.headers.keys()))

    assert shape(answers[0]) == shape(answers[1])
    assert answers[0].status_code == 200
    if fmt == "svg":
        assert answers[1].data == qr_svg(f"http://localhost/device?user_code={unknown}")


def test_qr_code_of_expired_code_is_still_its_image(client, kiosk):
    """Test that an expired code's QR is answered as any other code's (nothing to learn)."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        body = authorize(client, kiosk)
        fresh = client.get(f"/device/qr/{body['user_code']}.svg")
        frozen.tick(dt.timedelta(seconds=601))
        expired = client.get(f"/device/qr/{body['user_code']}.svg")
    assert (expired.status_code, expired.data) == (200, fresh.data)


def test_new_terms_must_be_accepted_before_a_device_approval(client, kiosk):
    """Test that a signed-in resident is sent to the new terms before the kiosk consent."""
    from idp.terms import service as terms

    Browser(client).login()
    terms.publish_terms("2027-01", "https://example.jp/terms", summary="改定",
                        summary_en="Revised")
    db.session.commit()
    body = authorize(client, kiosk)
    page = client.get("/device")
    response = client.post("/device", data={"user_code": body["user_code"],
                                            "csrf_token": csrf(page.text)})
    response = client.get(response.headers["Location"])
    assert response.status_code == 302 and "/terms" in response.headers["Location"]
    assert poll(client, kiosk, body["device_code"]).json["error"] == "authorization_pending"


# ---- how the resident signed in: amr/acr in the kiosk's ID token (RFC 8176) -----------

def device_code_row(device_code: str) -> DeviceCode:
    from idp import secrets  # noqa: PLC0415
    db.session.expire_all()
    return db.session.scalar(select(DeviceCode).where(
        DeviceCode.device_code_digest == secrets.digest(device_code)))


def test_a_password_approval_gives_amr_pwd_and_no_acr(client, kiosk):
    """Test that the ID token says pwd, as the code flow's would, and earns no acr."""
    body = authorize(client, kiosk)
    approve(client, body["user_code"])
    assert device_code_row(body["device_code"]).amr == ["pwd"]
    claims = jwt_claims(poll(client, kiosk, body["device_code"]).json["id_token"])
    assert claims["amr"] == ["pwd"]
    assert "acr" not in claims


def test_a_password_and_totp_approval_gives_amr_mfa(client, kiosk):
    """Test that a sign-in with the second factor on the phone reaches the kiosk as
    pwd+otp+mfa, still without acr (a code can be relayed by a look-alike site)."""
    import pyotp  # noqa: PLC0415

    from idp.accounts.models import Resident  # noqa: PLC0415

    resident = db.session.scalar(select(Resident).where(Resident.email == "hanako@example.jp"))
    resident.totp_secret, resident.totp_enabled_at = pyotp.random_base32(), dt.datetime.now(dt.UTC)
    db.session.commit()
    body = authorize(client, kiosk)
    response = enter_code(client, body["user_code"])
    login_page = client.get(response.headers["Location"])
    next_url = re.search(r'name="next" value="([^"]+)"', login_page.text).group(1)
    response = client.post("/login", data={"email": "hanako@example.jp",
                                           "password": factories.PASSWORD, "next": next_url,
                                           "csrf_token": csrf(login_page.text)})
    assert response.headers["Location"].endswith("/login/second-factor")
    page = client.get("/login/second-factor")
    response = client.post("/login/second-factor", data={
        "code": pyotp.TOTP(resident.totp_secret).now(), "action": "verify",
        "csrf_token": csrf(page.text)})
    assert response.headers["Location"].endswith("/device/confirm")
    assert decide(client).status_code == 200
    claims = jwt_claims(poll(client, kiosk, body["device_code"]).json["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert "acr" not in claims


def test_a_decline_records_no_amr(client, kiosk):
    """Test that only an approval keeps how the resident signed in."""
    body = authorize(client, kiosk)
    approve(client, body["user_code"], decision="deny")
    assert device_code_row(body["device_code"]).amr is None


def test_a_code_approved_without_amr_gets_no_amr_rather_than_a_guess(client, kiosk):
    """Test that a code approved by a node of the previous version (no amr recorded:
    the column is new) yields an ID token without amr or acr, not an invented pwd."""
    body = authorize(client, kiosk)
    approve(client, body["user_code"])
    device_code_row(body["device_code"]).amr = None
    db.session.commit()
    claims = jwt_claims(poll(client, kiosk, body["device_code"]).json["id_token"])
    assert claims["sub"] and "amr" not in claims and "acr" not in claims


def test_acr_values_are_not_a_device_authorization_parameter(client, kiosk):
    """Test that acr_values sent to /device_authorization (RFC 8628 §3.1 has no such
    parameter) change nothing and are never answered with an acr the sign-in did not earn."""
    response = client.post("/device_authorization",
                           data={"scope": "openid touch_events", "acr_values": "phrh"},
                           auth=(kiosk.client_id, kiosk.client_secret))
    assert response.status_code == 200, response.text
    approve(client, response.json["user_code"])
    claims = jwt_claims(poll(client, kiosk, response.json["device_code"]).json["id_token"])
    assert claims["amr"] == ["pwd"]
    assert "acr" not in claims
