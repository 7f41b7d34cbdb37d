"""New ids, references and secrets, and the digests secrets are stored as."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

import phonenumbers

# Read aloud without doubt: no 0/O, no 1/I/L.
UNAMBIGUOUS = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
VENUE_ID_LENGTH = 6
REFERENCE_TAIL_LENGTH = 6
# Unit ids: tables ``T<n>``, seats ``S<n>``, and seat maps' ``<section>-<row>-<n>`` (section
# and row ids ``[A-Za-z0-9]{1,16}``). For schemas (JSON Schema's ECMA flavour and Python's
# ``re.search`` alike): ``(?!\n)`` refuses the final newline Python's ``$`` lets through.
UNIT_ID_PATTERN = r"^[A-Za-z0-9-]{1,40}$(?!\n)"


def _code(length: int) -> str:
    return "".join(secrets.choice(UNAMBIGUOUS) for _ in range(length))


def new_venue_id() -> str:
    """A venue id: six unambiguous characters (887 million possibilities)."""
    return _code(VENUE_ID_LENGTH)


def new_hold_id() -> str:
    """A hold id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def new_staff_token_id() -> str:
    """A staff token's id: 16 letters and digits (about 95 random bits). Never a leading '-',
    which the command line would read as an option (``holdsvc staff-token revoke``)."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16))


_ALPHANUMERIC = string.ascii_letters + string.digits


def new_reference(venue_id: str) -> str:
    """A reservation reference, ``<venue id>-<6 characters>``.

    It carries its venue, so a reference alone finds its reservation with no global index
    (no command ever crosses cluster slots), and it is unique because venue ids are.
    """
    return f"{venue_id}-{_code(REFERENCE_TAIL_LENGTH)}"


def venue_of_reference(reference: str) -> str | None:
    """The venue id inside a reference, or None when it is not shaped like one."""
    venue_id, sep, tail = reference.upper().partition("-")
    if not sep or len(venue_id) != VENUE_ID_LENGTH or len(tail) != REFERENCE_TAIL_LENGTH:
        return None
    if any(ch not in UNAMBIGUOUS for ch in venue_id + tail):
        return None
    return venue_id


def new_secret() -> str:
    """A fresh random secret token (manage tokens)."""
    return secrets.token_urlsafe(24)


def hold_token(secret_key: bytes, venue_id: str, hold_id: str) -> str:
    """The hold's token: a MAC (keyed BLAKE2b) of its id, so an idempotent retry can hand it
    back again while Redis keeps only its digest."""
    # Keyed BLAKE2b is a MAC in one C call (HMAC-SHA256 costs an OpenSSL setup per call).
    message = f"hold:{venue_id}:{hold_id}".encode()
    return hashlib.blake2b(message, key=secret_key, digest_size=20).hexdigest()


def manage_token_of(hold_token: str, venue_id: str, hold_id: str) -> str:
    """The manage token of the reservation a hold becomes: a MAC keyed with the hold's token.

    A replayed confirm (same hold, same token) answers the same manage token again while
    Redis keeps only its digest; only the bearer of the hold token (as strong a secret) can
    compute it.
    """
    message = f"manage:{venue_id}:{hold_id}".encode()
    return hashlib.blake2b(message, key=hold_token.encode()[:64], digest_size=24).hexdigest()


def link_token(secret_key: str, reference: str) -> str:
    """The token of a mailed manage link: a MAC of the reference (keyed BLAKE2b), so the
    mailer can write the link while Redis keeps only the manage token's digest."""
    message = f"manage-link:{reference.upper()}".encode()
    return hashlib.blake2b(message, key=mac_key(secret_key), digest_size=20).hexdigest()


def is_link_token(secret_key: str | None, reference: str, presented: str | None) -> bool:
    """Whether ``presented`` is the link token of ``reference`` (constant-time compare)."""
    if not secret_key or not presented:
        return False
    return hmac.compare_digest(link_token(secret_key, reference), presented)


def mac_key(secret: str) -> bytes:
    """The 64-byte key hold tokens are made with, derived from the configured secret."""
    return hashlib.blake2b(secret.encode()).digest()


def digest(token: str) -> str:
    """The SHA-256 hex digest a secret is stored and compared as."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(presented: str | None, stored_digest: str | None) -> bool:
    """Constant-time check of a presented token against a stored digest."""
    if not presented or not stored_digest:
        return False
    return hmac.compare_digest(digest(presented), stored_digest)


def normalize_phone(raw: str, region: str) -> str:
    """A phone number in E.164 (``+12125550100``); ValueError when it is not one."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"{raw!r} is not a phone number") from error
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
