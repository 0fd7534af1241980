"""The errors of the trust core. Each says which key, which node and which rule."""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error raised by `crypto`."""


class KeyStoreError(CryptoError):
    """A key file is missing, unreadable, malformed or too widely readable."""


class MalformedEnvelopeError(CryptoError):
    """The envelope's bytes do not parse, or a header field breaks a format rule."""


class SignatureError(CryptoError):
    """A signature does not verify, or the key that should have made it is not valid."""


class UnknownKeyError(SignatureError):
    """The origin has no signing key with the id the envelope names."""


class KeyWindowError(SignatureError):
    """The signing key was not valid at the time the signature claims."""


class DecryptionError(CryptoError):
    """Ciphertext does not open under the key (wrong key, or tampered)."""


class KeyUnavailableError(CryptoError):
    """This node lacks the audience epoch key an envelope was sealed under."""


class CertificateError(CryptoError):
    """A TLS certificate or CSR is malformed, not issued by this federation, or not valid now."""


class DirectoryError(CryptoError):
    """A signed directory breaks a rule of acceptance: which rule, which version, which keys."""
