"""The node's server interceptors, each doing one thing, outermost first:

1. `context.RequestContextInterceptor`: binds the call's method, request id and
   peer into the log context, for unary and streaming calls alike;
2. `errors.ErrorMappingInterceptor`: domain errors to status codes, anything
   else logged as our bug and answered INTERNAL without details;
3. `auth.AuthInterceptor` (officer API only): bearer token to user, the user's
   role checked against `node.api.permissions`; the servicer learns who calls
   from `current_caller()`;
4. `errors.DecodingInterceptor`: a request that does not parse is refused as
   INVALID_ARGUMENT, once the caller is known.

Imports node.api.permissions, node.errors, crypto.errors and node.storage.users
(the `User` an authenticator returns); nothing of the servicers."""

from __future__ import annotations

from typing import Any

from node.api.interceptors.auth import (
    OPEN_SERVICES,
    Authenticator,
    AuthInterceptor,
    bearer_token,
    current_caller,
)
from node.api.interceptors.context import RequestContextInterceptor
from node.api.interceptors.errors import DecodingInterceptor, ErrorMappingInterceptor, status_for

__all__ = [
    "OPEN_SERVICES",
    "AuthInterceptor",
    "Authenticator",
    "DecodingInterceptor",
    "ErrorMappingInterceptor",
    "RequestContextInterceptor",
    "bearer_token",
    "current_caller",
    "federation_interceptors",
    "officer_interceptors",
    "status_for",
]


def officer_interceptors(authenticator: Authenticator) -> list[Any]:
    """The officer API's interceptors: every NodeService call authenticated and authorised."""
    return [
        RequestContextInterceptor(),
        ErrorMappingInterceptor(),
        AuthInterceptor(authenticator),
        DecodingInterceptor(),
    ]


def federation_interceptors() -> list[Any]:
    """The federation listener's: its callers are authenticated by mutual TLS
    (the servicer checks the certificate's node against the directory)."""
    return [RequestContextInterceptor(), ErrorMappingInterceptor(), DecodingInterceptor()]
