"""Every model, imported once so ``Base.metadata`` is complete (Alembic, tests)."""

from idp.access.models import AuthorizationCode
from idp.access.models import BrowserSession
from idp.access.models import DeviceCode
from idp.access.models import PairwiseSubject
from idp.access.models import Token
from idp.accounts.models import RecoveryCode
from idp.accounts.models import RegistrationInvitation
from idp.accounts.models import Resident
from idp.accounts.models import UsedLink
from idp.admin.models import Admin
from idp.admin.models import AdminFormToken
from idp.admin.models import AdminSession
from idp.audit.models import AuditEvent
from idp.audit.models import AuditHead
from idp.citydata.models import CityContribution
from idp.citydata.models import CitySeal
from idp.clients.models import Client
from idp.clients.models import Company
from idp.clients.models import CompanyContract
from idp.consent.models import Consent
from idp.consent.models import ConsentReceipt
from idp.db import Base
from idp.exchange.models import Category
from idp.exchange.models import CollectionStop
from idp.exchange.models import CompanyUsageReport
from idp.exchange.models import DataContract
from idp.exchange.models import DataLink
from idp.exchange.models import MonitoringAlert
from idp.exchange.models import RegisteredRecord
from idp.exchange.token_reads import TokenRead
from idp.keys.models import SigningKey
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from idp.oauth.models import UsedClientAssertion
from idp.outbox.models import OutboxMessage
from idp.proofing.models import IdentityProofing
from idp.sensors.models import Sensor
from idp.sensors.models import SensorCount
from idp.terms.models import TermsVersion

__all__ = [
    "Admin", "AdminFormToken", "Category", "CollectionStop", "CompanyUsageReport",
    "DataContract", "DataLink", "MonitoringAlert", "RegisteredRecord",
    "AdminSession", "AuditHead", "CompanyContract",
    "IdentityProofing",
    "CityContribution",
    "CitySeal",
    "AuditEvent", "AuthorizationCode", "Base", "BrowserSession", "Client", "Company", "Consent",
    "ConsentReceipt", "DeviceCode", "Kiosk", "OutboxMessage", "PairwiseSubject", "RecoveryCode",
    "Resident", "Sensor", "SensorCount",
    "SigningKey", "TermsVersion", "Token", "TokenRead", "TouchEvent", "UsedClientAssertion",
    "RegistrationInvitation",
    "UsedLink",
]
