"""Audit event tags, ``source:subject:action`` (warehouse events/tags.py style)."""

from __future__ import annotations

import enum


class AuditTag(enum.StrEnum):
    LOGIN_SUCCESS = "resident:login:success"
    LOGIN_FAILURE = "resident:login:failure"
    LOGOUT = "resident:session:end"
    RESIDENT_CREATE = "resident:account:create"
    CONSENT_GRANT = "consent:grant"
    CONSENT_CHANGE = "consent:change"
    CONSENT_DENY = "consent:deny"
    CODE_ISSUE = "oauth:code:issue"
    CODE_REPLAY = "oauth:code:replay"
    TOKEN_ISSUE = "oauth:token:issue"  # noqa: S105
    TOKEN_REFRESH = "oauth:token:refresh"  # noqa: S105
    TOKEN_REVOKE = "oauth:token:revoke"  # noqa: S105
    REFRESH_REUSE = "oauth:refresh:reuse"
    CLAIMS_RELEASE = "oauth:claims:release"
    DEVICE_APPROVE = "device:approve"
    DEVICE_DENY = "device:deny"
    USER_CODE_FAILURE = "device:user_code:failure"
    TOUCH_EVENTS = "kiosk:touch_events:store"
    KIOSK_CREATE = "kiosk:create"
    COMPANY_CREATE = "company:create"
    COMPANY_SUSPEND = "company:suspend"
    CLIENT_CREATE = "client:create"
    CLIENT_REVOKE = "client:revoke"
    KEY_ROTATE = "key:rotate"
    # The resident's own pages (idp/self_service, idp/interaction/views/terms)
    REGISTRATION_EXISTING = "resident:registration:existing"
    EMAIL_VERIFY = "resident:email:verify"
    EMAIL_CHANGE_REQUEST = "resident:email:change_request"
    EMAIL_CHANGE = "resident:email:change"
    PROFILE_CHANGE = "resident:profile:change"
    PASSWORD_CHANGE = "resident:password:change"  # noqa: S105
    PASSWORD_RESET_REQUEST = "resident:password:reset_request"  # noqa: S105
    PASSWORD_RESET = "resident:password:reset"  # noqa: S105
    TOTP_ENABLE = "resident:totp:enable"
    TOTP_DISABLE = "resident:totp:disable"
    TOTP_FAILURE = "resident:login:otp_failure"
    RECOVERY_CODES_CREATE = "resident:recovery_codes:create"
    RECOVERY_CODE_USE = "resident:recovery_code:use"
    TERMS_ACCEPT = "resident:terms:accept"
    TERMS_DECLINE = "resident:terms:decline"
    DATA_EXPORT = "resident:data:export"
    ACCOUNT_DELETE = "resident:account:delete"
    TERMS_PUBLISH = "terms:publish"
    # Consortium administration (idp/admin, idp/clients, idp/keys, idp/proofing)
    ADMIN_CREATE = "admin:account:create"
    ADMIN_ENROL = "admin:account:enrol"
    ADMIN_RESET = "admin:account:reset"
    ADMIN_DISABLE = "admin:account:disable"
    ADMIN_LOGIN_SUCCESS = "admin:login:success"
    ADMIN_LOGIN_FAILURE = "admin:login:failure"
    ADMIN_LOGOUT = "admin:session:end"
    ADMIN_REAUTH = "admin:reauth:success"
    ADMIN_REAUTH_FAILURE = "admin:reauth:failure"
    ADMIN_REFUSED = "admin:action:refused"
    ADMIN_FORM_REJECTED = "admin:form:rejected"
    CLI_REFUSED = "cli:command:refused"
    COMPANY_UPDATE = "company:update"
    COMPANY_REINSTATE = "company:reinstate"
    COMPANY_REVOKE = "company:revoke"
    CONTRACT_RECORD = "company:contract:record"
    CLIENT_UPDATE = "client:update"
    CLIENT_SECRET_ROTATE = "client:secret:rotate"  # noqa: S105
    KIOSK_UPDATE = "kiosk:update"
    KEY_RETIRE = "key:retire"
    AUDIT_EXPORT = "audit:export"
    AUDIT_VERIFY = "audit:verify"
    REPORT_USAGE = "report:usage"
    PROOFING_RECORD = "proofing:record"
    PROOFING_WITHDRAW = "proofing:withdraw"
    BACKCHANNEL_LOGOUT = "oauth:backchannel_logout:delivery"
    SECURITY_EVENT = "security_event:delivery"
    MAIL_DELIVERY = "mail:delivery"
    RESIDENT_SIGN_OUT = "resident:session:end_all"
