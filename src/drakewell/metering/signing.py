"""Node keys, signing, and the two verification paths (fast coincurve, reference eth-account).

A node signs the EIP-712 digest of a reading (:meth:`MeterDomain.digest`) with its secp256k1 key;
the signature is ``r ‖ s ‖ v`` with ``v = 27 + recovery id`` and ``s`` in the lower half of the
curve order, exactly what ``eth_account`` produces and what ``ecrecover`` (snekmate's ECDSA) accepts.

Fast path: :class:`FastVerifier` calls libsecp256k1 (through coincurve's cffi bindings) to recover
the public key from ``(digest, r, s, recovery id)``. The first time a node's key is recovered it is
hashed to an address (``keccak256(pubkey)[12:]``) and, when that matches the node, remembered in
libsecp256k1's normalised 64-byte form; from then on a recovered key is compared byte for byte with
the remembered one, with no serialising or hashing.
Recovery (not mere verification against a known key) is what checks ``v``, so a signature accepted
here also recovers to the node on chain.

Threads: servers verify on a thread pool and libsecp256k1's calls release the GIL, so the C output
buffers (recoverable signature, public key, serialisation) are per thread (``threading.local``),
never per instance: a buffer shared by two threads lets one read the key the other recovered, and a
forged signature would pass as the node's. The one shared structure, the proven-key cache, maps a
node to the key whose address hash equals the node; an entry is written whole (one dict store,
atomic under the GIL) and only ever with that same value, so it needs no lock.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import coincurve
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from drakewell.core.merkle import keccak256
from drakewell.metering.readings import (
    MalformedReadingError,
    MeterDomain,
    Reading,
    SignedReading,
    normalize_address,
)

if TYPE_CHECKING:  # eth-account takes seconds to import: only its reference paths load it
    from eth_account.datastructures import SignedMessage

# secp256k1 group order and half of it (EIP-2: s must be at most n/2)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2


def address_of_pubkey(pubkey64: bytes) -> str:
    """Ethereum address of an uncompressed public key without its 0x04 prefix (64 bytes)."""
    return "0x" + keccak256(pubkey64)[12:].hex()


@dataclass(frozen=True)
class NodeKey:
    """A node's secp256k1 signing key."""

    private_key: bytes  # 32 bytes

    @classmethod
    def generate(cls) -> NodeKey:
        return cls(coincurve.PrivateKey(secrets.token_bytes(32)).secret)

    @classmethod
    def from_hex(cls, text: str) -> NodeKey:
        raw = bytes.fromhex(text[2:] if text.startswith("0x") else text)
        if len(raw) != 32:
            raise MalformedReadingError("a private key is 32 bytes", hint="pass 0x followed by 64 hex digits")
        return cls(raw)

    @property
    def hex(self) -> str:
        return "0x" + self.private_key.hex()

    @cached_property
    def _secret(self) -> coincurve.PrivateKey:
        return coincurve.PrivateKey(self.private_key)

    @cached_property
    def address(self) -> str:
        pub = self._secret.public_key.format(compressed=False)[1:]
        return address_of_pubkey(pub)

    def sign_digest(self, digest: bytes) -> bytes:
        """65-byte ``r ‖ s ‖ v`` over a 32-byte digest (libsecp256k1 always returns low ``s``)."""
        sig = self._secret.sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes([27 + sig[64]])

    def sign(self, reading: Reading, domain: MeterDomain) -> SignedReading:
        return SignedReading(reading, self.sign_digest(domain.digest(reading)))


_N_BYTES = SECP256K1_N.to_bytes(32, "big")
_HALF_N_BYTES = SECP256K1_HALF_N.to_bytes(32, "big")
_ZERO32 = bytes(32)


def signature_problem(signature: bytes) -> str | None:
    """``None`` for a canonical 65-byte signature, else what is wrong with it.

    ``r`` and ``s`` are compared as 32-byte big-endian strings, which orders them as integers.
    """
    if len(signature) != 65:
        return f"signature is {len(signature)} bytes, not 65"
    if signature[64] not in (27, 28):
        return f"signature v={signature[64]} is not 27 or 28"
    r, s = signature[:32], signature[32:64]
    if not (_ZERO32 < r < _N_BYTES and _ZERO32 < s <= _HALF_N_BYTES):
        return "signature r or s is out of range (s must be in the lower half of the curve order)"
    return None


class _Buffers:
    """One thread's libsecp256k1 output buffers."""

    __slots__ = ("out", "outlen", "pub", "pub_bytes", "rsig")

    def __init__(self) -> None:
        self.rsig = ffi.new("secp256k1_ecdsa_recoverable_signature *")
        self.pub = ffi.new("secp256k1_pubkey *")
        self.pub_bytes = ffi.buffer(self.pub, 64)
        self.out = ffi.new("unsigned char[65]")
        self.outlen = ffi.new("size_t *")


class FastVerifier:
    """Recovers signers with libsecp256k1 directly; remembers each node's public key once proven.

    Safe to share between threads: the C buffers are per thread (see the module docstring).
    """

    def __init__(self) -> None:
        self._ctx = GLOBAL_CONTEXT.ctx
        self._local = threading.local()
        self._known: dict[str, bytes] = {}  # node address -> libsecp256k1's opaque public key

    def _buffers(self) -> _Buffers:
        try:
            return self._local.buffers
        except AttributeError:
            self._local.buffers = buffers = _Buffers()
            return buffers

    def recover_pubkey(self, digest: bytes, signature: bytes) -> bytes | None:
        """The 64-byte public key that signed ``digest``, or ``None`` if the signature is invalid."""
        if signature_problem(signature) is not None:
            return None
        return self._recover_canonical(digest, signature)

    def _recover_into_pub(self, b: _Buffers, digest: bytes, signature: bytes) -> bool:
        """Recover into ``b.pub`` (libsecp256k1's opaque 64-byte key); the signature is canonical."""
        return bool(
            lib.secp256k1_ecdsa_recoverable_signature_parse_compact(
                self._ctx, b.rsig, signature[:64], signature[64] - 27
            )
            and lib.secp256k1_ecdsa_recover(self._ctx, b.pub, b.rsig, digest)
        )

    def _serialized_pub(self, b: _Buffers) -> bytes:
        b.outlen[0] = 65
        lib.secp256k1_ec_pubkey_serialize(self._ctx, b.out, b.outlen, b.pub, lib.SECP256K1_EC_UNCOMPRESSED)
        return ffi.buffer(b.out, 65)[1:]

    def _recover_canonical(self, digest: bytes, signature: bytes) -> bytes | None:
        """:meth:`recover_pubkey` for a signature already checked by :func:`signature_problem`."""
        b = self._buffers()
        return self._serialized_pub(b) if self._recover_into_pub(b, digest, signature) else None

    def recover_address(self, digest: bytes, signature: bytes) -> str | None:
        pub = self.recover_pubkey(digest, signature)
        return None if pub is None else address_of_pubkey(pub)

    def recover_raw(self, digest: bytes, signature: bytes) -> bytes | None:
        """The recovered key in libsecp256k1's 64-byte form, or ``None``; ``signature`` is canonical."""
        b = self._buffers()
        if not self._recover_into_pub(b, digest, signature):
            return None
        return b.pub_bytes[:]

    def recover_many(self, digests: Sequence[bytes], signatures: Sequence[bytes]) -> list[bytes | None]:
        """:meth:`recover_raw` for many (canonical) signatures in one tight loop.

        Recovery reads large precomputed tables; run back to back, they stay in the CPU cache, which
        makes each recovery markedly cheaper than when Python work runs between them.
        """
        b = self._buffers()
        ctx, rsig, pub, key = self._ctx, b.rsig, b.pub, b.pub_bytes
        parse = lib.secp256k1_ecdsa_recoverable_signature_parse_compact
        recover = lib.secp256k1_ecdsa_recover
        return [
            key[:] if parse(ctx, rsig, s[:64], s[64] - 27) and recover(ctx, pub, rsig, d) else None
            for d, s in zip(digests, signatures, strict=True)
        ]

    @property
    def known_keys(self) -> dict[str, bytes]:
        """Node address -> its proven key in libsecp256k1's form (the verifier's live cache)."""
        return self._known

    def prove(self, node: str, raw: bytes) -> bool:
        """Whether ``raw``, a key from :meth:`recover_raw`, is ``node``'s; remembered if so."""
        b = self._buffers()
        ffi.memmove(b.pub, raw, 64)
        if address_of_pubkey(self._serialized_pub(b)) == node:
            self._known[node] = raw
            return True
        return False

    def is_signed_by(self, node: str, digest: bytes, signature: bytes, *, checked: bool = False) -> bool:
        """Whether ``signature`` over ``digest`` recovers to ``node`` (lower-case 0x address).

        ``checked=True`` skips the canonical-form check when the caller has done it already. A
        node's key, once proven, is remembered in libsecp256k1's own (normalised, hence canonical)
        64-byte form, so later checks compare bytes without serialising or hashing.
        """
        if not checked and signature_problem(signature) is not None:
            return False
        raw = self.recover_raw(digest, signature)
        if raw is None:
            return False
        known = self._known.get(node)
        return raw == known if known is not None else self.prove(node, raw)


def recover_with_eth_account(signed: SignedReading, domain: MeterDomain) -> str:
    """The signer by eth-account's reference path (slow; used to cross-check the fast path)."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    message = encode_typed_data(full_message=domain.typed_data(signed.reading))
    return normalize_address(Account.recover_message(message, signature=signed.signature))


def sign_with_eth_account(private_key: bytes, reading: Reading, domain: MeterDomain) -> SignedReading:
    """Sign through eth-account (reference path)."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    signed: SignedMessage = Account.sign_message(
        encode_typed_data(full_message=domain.typed_data(reading)), private_key=private_key
    )
    return SignedReading(reading, bytes(signed.signature))
