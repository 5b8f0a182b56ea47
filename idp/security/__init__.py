"""Security mechanisms shared by every sign-in and form (floor L0: imports no domain).

- ``algorithms``  the JWS algorithms we sign with and accept
- ``totp``        one-time codes (RFC 6238) and their single-use time step
- ``lockout``     N failures within a window lock an account (counted by the caller)
- ``throttle``    growing delays per sign-in address, never a permanent lockout
- ``csrf``        the one CSRF mechanism, and single-use forms built on it
"""
