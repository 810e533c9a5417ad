"""Transaction gas of a contract call on the embedded EVM, equal to what a node's receipt says.

titanoboa executes each call as a bare message inside one long-lived state, so its execution gas
sees every earlier write as still dirty (EIP-2200 prices those stores at 100) and every slot and
account already warm (EIP-2929). :func:`transaction_gas` gives the call a transaction's state
first: it commits earlier changes (so they count as original values), resets the access sets and
warms what a transaction warms (sender, recipient, precompiles). The figure is then

    gas = 21,000 + calldata (16 per non-zero byte, 4 per zero byte) + execution - refund,

with the refund capped at a fifth of the gas (EIP-3529) -- a receipt's ``gasUsed``. The
integration tests check it against anvil's receipts for the same calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_canonical_address

from drakewell.chain import Contract
from drakewell.chain.backends import AbiArg, BoundContract, EmbeddedBackend, abi_and_bytecode
from drakewell.core.errors import ChainError

if TYPE_CHECKING:
    from eth_typing import ABIComponent

TX_BASE_GAS = 21_000


def _abi_type(entry: ABIComponent) -> str:
    t = str(entry["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in entry["components"]) + ")" + t[len("tuple") :]
    return t


def calldata(contract: str, fn: str, args: tuple[AbiArg, ...]) -> bytes:
    """The ABI-encoded call data of ``contract.fn(*args)``."""

    abi, _ = abi_and_bytecode(contract)
    entry = next((e for e in abi if e["type"] == "function" and e["name"] == fn), None)
    if entry is None:
        raise ChainError(f"{contract} has no function {fn!r}", hint="check the ABI: drakewell chain abi NAME")
    types = [_abi_type(i) for i in entry["inputs"]]
    return bytes(function_signature_to_4byte_selector(f"{fn}({','.join(types)})")) + encode(types, list(args))


def calldata_gas(data: bytes) -> int:
    return sum(16 if b else 4 for b in data)


def _begin_transaction(backend: EmbeddedBackend, sender: str, to: str) -> None:

    state = backend.env.evm.vm.state
    journal = getattr(getattr(state._account_db, "_journaldb", None), "_journal", None)
    if len(getattr(journal, "_checkpoint_stack", ())) > 1:  # py-evm keeps one base checkpoint
        raise ChainError(
            "transaction_gas commits the chain's pending state, which would break an open env.anchor()",
            hint="measure on a chain outside env.anchor(), e.g. a fresh Chain.embedded()",
        )
    state.lock_changes()
    for address in (sender, to):
        state.mark_address_warm(to_canonical_address(address))
    for precompile in state.computation_class._precompiles:
        state.mark_address_warm(precompile)


def transaction_gas(client: Contract, fn: str, *args: AbiArg, sender: str) -> int:
    """Send ``client.fn(*args)`` as ``sender`` on an embedded chain; return its transaction gas.

    View functions are measured as if sent in a transaction. It commits the chain's pending state
    (as a mined block would), so it refuses to run inside ``env.anchor()``.
    """
    backend, handle = client.chain.backend, client.handle
    if not isinstance(backend, EmbeddedBackend) or not isinstance(handle, BoundContract):
        raise ChainError("transaction_gas measures embedded chains", hint="on a node, read Receipt.gas_used")
    data = calldata(client.name, fn, args)
    _begin_transaction(backend, sender, client.address)
    client.send(fn, *args, sender=sender)
    comp = handle.contract._computation
    total = TX_BASE_GAS + calldata_gas(data) + int(comp.get_gas_used())
    return total - min(int(comp.get_gas_refund()), total // 5)
