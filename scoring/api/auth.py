"""HTTP Basic and Bearer authentication with API keys, for DRF."""

import base64
import binascii

from django.contrib.auth import authenticate
from rest_framework import authentication, exceptions

from scoring.services.api_keys import api_key_user


class ApiKeyBasicAuthentication(authentication.BaseAuthentication):
    """HTTP Basic: the password is an API key (any username, as Weave sends `api:<key>`),
    or a Django username and password."""

    www_authenticate_realm = "api"

    def authenticate(self, request):
        auth = authentication.get_authorization_header(request).split()
        if not auth or auth[0].lower() != b"basic":
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid basic header: expected 'Basic <base64>'.")
        try:
            username, sep, password = base64.b64decode(auth[1], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Invalid basic header: credentials not base64.") from None
        if not sep:
            raise exceptions.AuthenticationFailed("Invalid basic header: expected 'user:password'.")
        user = api_key_user(key=password)
        if user is None and username:
            candidate = authenticate(request=request._request, username=username, password=password)
            user = candidate if candidate is not None and candidate.is_active else None
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid API key or username/password.")
        return user, None

    def authenticate_header(self, request):
        return f'Basic realm="{self.www_authenticate_realm}"'


class ApiKeyBearerAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <api key>`."""

    def authenticate(self, request):
        auth = authentication.get_authorization_header(request).split()
        if not auth or auth[0].lower() != b"bearer":
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid bearer header: expected 'Bearer <api key>'.")
        try:
            key = auth[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid bearer token.") from None
        user = api_key_user(key=key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return user, None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
