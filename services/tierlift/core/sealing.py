"""Prompt and answer texts sealed to the assessor's key before they cross the bus.

NATS permissions already keep `tierlift.shadow.finished` from every role but the assessor; a
sealed box also keeps the texts unreadable in the JetStream store on disk, in a backup of it and
to an operator with the bootstrap identity. The assessor's NATS nkey is an Ed25519 key pair;
libsodium's sealed box (X25519 and XSalsa20-Poly1305, via PyNaCl) encrypts to its Curve25519 form,
so no second key has to be made, distributed or rotated: the public key is the one routers
already trust for the assessor's events (TIERLIFT_TRUSTED_PRODUCERS)."""

from __future__ import annotations

import nacl.exceptions
import nacl.public
import nacl.signing
import nkeys

from tierlift.core.nats_access import verify_key


class Unsealable(Exception):
    """Sealed to another key (the assessor's key was rotated), or changed on the way."""


def seal(data: bytes, public_nkey: str) -> bytes:
    """`data` readable only with the seed of `public_nkey` (a "U..." user nkey)."""
    recipient = verify_key(public_nkey).to_curve25519_public_key()
    return bytes(nacl.public.SealedBox(recipient).encrypt(data))


def unseal(sealed: bytes, seed: str) -> bytes:
    if not seed:
        raise Unsealable("sealed to the assessor's key, and this process has no NATS seed")
    _, raw = nkeys.decode_seed(seed.encode())
    private = nacl.signing.SigningKey(bytes(raw)).to_curve25519_private_key()
    try:
        return bytes(nacl.public.SealedBox(private).decrypt(sealed))
    except nacl.exceptions.CryptoError as exc:
        raise Unsealable("sealed to another key, or changed after sealing") from exc
