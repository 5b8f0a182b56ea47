"""Every model, imported once so ``Base.metadata`` is complete (Alembic, tests)."""

from idp.accounts.models import BrowserSession
from idp.accounts.models import Resident
from idp.audit.models import AuditEvent
from idp.clients.models import Client
from idp.clients.models import Company
from idp.consent.models import Consent
from idp.db import Base
from idp.keys.models import SigningKey
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from idp.oauth.models import AuthorizationCode
from idp.oauth.models import DeviceCode
from idp.oauth.models import PairwiseSubject
from idp.oauth.models import Token
from idp.oauth.models import UsedClientAssertion

__all__ = [
    "AuditEvent", "AuthorizationCode", "Base", "BrowserSession", "Client", "Company", "Consent",
    "DeviceCode", "Kiosk", "PairwiseSubject", "Resident", "SigningKey", "Token", "TouchEvent",
    "UsedClientAssertion",
]
