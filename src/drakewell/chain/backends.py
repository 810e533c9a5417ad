"""Chain backends behind one narrow seam: deploy, attach, call, send, accounts and time.

- ``embedded``: titanoboa's in-process EVM (py-evm). Contracts compile once per process.
- ``rpc``: any EVM node over JSON-RPC (web3.py), transactions signed locally with eth-account.

A backend's ``deploy`` and ``attach`` hand out a :class:`ContractHandle`: a :class:`BoundContract`
holding the backend's own contract object (boa's ``VyperContract`` or web3's ``Contract``), whose
``call`` reads and ``send`` transacts through that backend. A revert becomes
:class:`ContractReverted` naming the contract, the function and the reason. boa, web3 and
eth-account take seconds to import: they are imported when a backend is made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar

from eth_abi import decode
from eth_utils import is_address, to_checksum_address

from drakewell.core.errors import ChainError

if TYPE_CHECKING:
    from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
    from eth_account.signers.local import LocalAccount
    from eth_typing import ABI, ChecksumAddress
    from web3.contract import Contract as Web3Contract
    from web3.types import TxParams, TxReceipt

CONTRACTS_DIR = Path(__file__).parent / "contracts"

AbiArg: TypeAlias = int | str | bytes | Sequence["AbiArg"]
"""A contract function's argument: an int (``uintN``, ``bool``), a str (``address``), bytes
(``bytesN``), or a sequence of them (a struct or an array)."""
AbiValue: TypeAlias = int | str | bytes | tuple["AbiValue", ...] | list["AbiValue"] | None
"""A contract function's decoded answer, of the Python type of its ABI type (``None``: no answer)."""


class ContractReverted(ChainError):
    """A contract call reverted; ``reason`` is the contract's own message."""

    def __init__(self, contract: str, function: str, reason: str) -> None:
        self.contract, self.function, self.reason = contract, function, reason
        super().__init__(
            f"{contract}.{function} reverted: {reason}",
            hint="check the caller's role, allowlist status, balances and the arguments",
        )


@dataclass(frozen=True)
class Receipt:
    gas_used: int  # execution gas of the call (embedded) or the transaction's gasUsed (rpc)
    tx_hash: str
    value: Any = None  # the function's return value (embedded only; rpc returns None)

    @property
    def amount(self) -> int:
        """``value`` as the integer the function answered (a ``uint256``, or a ``bool`` as 0/1);
        a ChainError where there is none (an rpc receipt, or a function without an answer)."""
        if isinstance(self.value, int):
            return int(self.value)
        raise ChainError(
            f"this receipt carries no integer answer ({self.value!r})",
            hint="on a node, read the result from the contract's state",
        )


class ContractHandle(Protocol):
    """What both backends' contract handles offer: a name, an address, reads and transactions."""

    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    def call(self, fn: str, args: tuple[AbiArg, ...]) -> AbiValue: ...
    def send(self, fn: str, args: tuple[AbiArg, ...], sender: str) -> Receipt: ...


_C = TypeVar("_C")
_C_contra = TypeVar("_C_contra", contravariant=True)


class _Transacts(Protocol[_C_contra]):
    """A backend's reads and transactions on its own contract objects."""

    def call(self, handle: _C_contra, contract: str, fn: str, args: tuple[AbiArg, ...]) -> AbiValue: ...
    def send(
        self, handle: _C_contra, contract: str, fn: str, args: tuple[AbiArg, ...], sender: str
    ) -> Receipt: ...


@dataclass(frozen=True)
class BoundContract(Generic[_C]):
    """A contract as a backend hands it out: the backend's own contract object (boa's
    ``VyperContract``, web3's ``Contract``) under its name, read and sent through that backend."""

    backend: _Transacts[_C]
    name: str
    contract: _C
    address: str

    def call(self, fn: str, args: tuple[AbiArg, ...]) -> AbiValue:
        return self.backend.call(self.contract, self.name, fn, args)

    def send(self, fn: str, args: tuple[AbiArg, ...], sender: str) -> Receipt:
        return self.backend.send(self.contract, self.name, fn, args, sender)


class Backend(Protocol):
    """The seam every chain backend implements."""

    name: str
    chain_id: int

    def deploy(self, contract: str, args: tuple[AbiArg, ...], sender: str) -> ContractHandle: ...
    def attach(self, contract: str, address: str) -> ContractHandle: ...
    def new_account(self) -> str: ...
    def timestamp(self) -> int: ...
    def warp(self, timestamp: int) -> None: ...


@cache
def compiled(contract: str) -> VyperDeployer:
    """The titanoboa deployer (compiled contract) of ``contracts/<contract>.vy``."""
    import boa

    path = CONTRACTS_DIR / f"{contract}.vy"
    if not path.exists():
        raise ChainError(
            f"no contract {contract!r}", hint=f"one of {sorted(p.stem for p in CONTRACTS_DIR.glob('*.vy'))}"
        )
    return boa.load_partial(str(path))


@cache
def abi_and_bytecode(contract: str) -> tuple[ABI, bytes]:
    """The ABI (JSON-ready) and the creation bytecode of ``contracts/<contract>.vy``."""
    from vyper.compiler.output import build_abi_output  # about a second, on top of compiling

    data = compiled(contract).compiler_data
    return build_abi_output(data), data.bytecode


_REASON = re.compile(r"<([^<>]+)>\s*$", re.MULTILINE)


def _decode_error(data: object) -> str | None:
    """The message of an ``Error(string)`` revert payload, if it is one."""
    if isinstance(data, bytes | bytearray) and data[:4] == bytes.fromhex("08c379a0"):
        try:
            return str(decode(["string"], bytes(data[4:]))[0])
        except Exception:
            return None
    return None


def _boa_reason(exc: Exception) -> str:
    frames = list(getattr(exc, "stack_trace", None) or [])
    for frame in frames:  # outermost first: the contract the caller called
        reason = _decode_error(getattr(frame, "vm_error", None))
        if reason:
            return reason
    for frame in frames:
        pretty = getattr(frame, "pretty_vm_reason", None)
        if pretty:
            return str(pretty)
    text = str(exc)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("=", "[E]", "<", "contract ")) and ":" in line:
            return line
    m = _REASON.search(text)
    return m.group(1) if m else text.strip().splitlines()[0] if text.strip() else "reverted"


def _checksum(address: str) -> ChecksumAddress:
    """``address`` as an EIP-55 checksum address, or a ChainError saying what is wrong."""
    if not isinstance(address, str) or not is_address(address):
        raise ChainError(
            f"not an address: {address!r}",
            hint="a 20-byte hex address such as 0x5FbDB2315678afecb367f032d93F642f64180aa3",
        )
    return to_checksum_address(address)


def _function(contract: VyperContract, name: str, fn: str) -> Callable[..., AbiValue]:
    """boa's function ``fn`` of ``contract``, refusing private names and missing ones."""
    method = getattr(contract, fn, None)
    if method is None or fn.startswith("_"):
        raise ChainError(f"{name} has no function {fn!r}", hint="check the ABI: drakewell chain abi " + name)
    return method


class EmbeddedBackend:
    """titanoboa's in-process EVM. ``env`` defaults to boa's global environment."""

    name = "embedded"

    def __init__(self, *, timestamp: int | None = None) -> None:
        import boa

        self.boa = boa
        self.env = boa.Env()  # its own EVM: chains never share state or clocks
        self.chain_id = int(self.env.evm.patch.chain_id)
        if timestamp is not None:
            self.env.evm.patch.timestamp = int(timestamp)

    def deploy(self, contract: str, args: tuple[AbiArg, ...], sender: str) -> BoundContract[VyperContract]:
        try:
            deployed = compiled(contract).deploy(*args, env=self.env, sender=sender)
        except self.boa.BoaError as exc:
            raise ContractReverted(contract, "__init__", _boa_reason(exc)) from None
        return BoundContract(self, contract, deployed, str(deployed.address))

    def attach(self, contract: str, address: str) -> BoundContract[VyperContract]:
        deployer = compiled(contract)
        checked = _checksum(address)
        if not self.env.get_code(checked):
            raise ChainError(
                f"no contract code at {checked} on this chain",
                hint="pass the address a deploy on this same chain printed",
            )
        with self.boa.swap_env(self.env):
            return BoundContract(self, contract, deployer.at(checked), str(checked))

    def call(self, handle: VyperContract, contract: str, fn: str, args: tuple[AbiArg, ...]) -> AbiValue:
        try:
            return _function(handle, contract, fn)(*args)
        except self.boa.BoaError as exc:
            raise ContractReverted(contract, fn, _boa_reason(exc)) from None

    def send(
        self, handle: VyperContract, contract: str, fn: str, args: tuple[AbiArg, ...], sender: str
    ) -> Receipt:
        try:
            value = _function(handle, contract, fn)(*args, sender=sender)
        except self.boa.BoaError as exc:
            raise ContractReverted(contract, fn, _boa_reason(exc)) from None
        return Receipt(int(handle._computation.get_gas_used()), "", value)

    def new_account(self) -> str:
        return str(self.env.generate_address())

    def timestamp(self) -> int:
        return int(self.env.evm.patch.timestamp)

    def warp(self, timestamp: int) -> None:
        if timestamp < self.timestamp():
            raise ChainError("cannot move the chain's clock backwards", hint="warp to a later time")
        self.env.evm.patch.timestamp = int(timestamp)
        self.env.evm.patch.block_number += 1


class RpcBackend:
    """A JSON-RPC node; transactions are signed locally with ``private_key``."""

    name = "rpc"

    def __init__(self, url: str, private_key: str, *, fund_wei: int = 10**18) -> None:
        from eth_account import Account
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        try:
            self.chain_id = int(self.w3.eth.chain_id)
        except Exception as exc:
            raise ChainError(
                f"cannot reach an EVM node at {url}: {exc}", hint="start the node or fix the URL"
            ) from exc
        self.deployer: LocalAccount = Account.from_key(private_key)
        self.keys: dict[str, LocalAccount] = {self.deployer.address: self.deployer}
        self.fund_wei = self.w3.to_wei(fund_wei, "wei")

    def attach(self, contract: str, address: str) -> BoundContract[Web3Contract]:
        abi, _ = abi_and_bytecode(contract)
        checked = _checksum(address)
        if not bytes(self.w3.eth.get_code(checked)):
            raise ChainError(
                f"no contract code at {checked} on the node (chain id {self.chain_id})",
                hint="pass the address a deploy to this node printed",
            )
        return BoundContract(self, contract, self.w3.eth.contract(address=checked, abi=abi), str(checked))

    def transact(self, tx: TxParams, sender: str, label: tuple[str, str]) -> TxReceipt:
        """Sign ``tx`` with ``sender``'s key, send it and wait for its receipt; ``label`` is the
        (contract, function) a revert names."""
        acct = self.keys.get(self.w3.to_checksum_address(sender))
        if acct is None:
            raise ChainError(
                f"no key for {sender}", hint="use an account made by new_account() or the deployer"
            )
        tx.setdefault("from", acct.address)
        tx.setdefault("chainId", self.chain_id)
        tx.setdefault("nonce", self.w3.eth.get_transaction_count(acct.address, "pending"))
        try:
            tx.setdefault("gas", int(self.w3.eth.estimate_gas(tx) * 1.2) + 10_000)
        except Exception as exc:  # a revert shows up when estimating
            raise ContractReverted(label[0], label[1], _rpc_reason(exc)) from None
        gas_price = self.w3.eth.gas_price
        tx.setdefault("maxFeePerGas", self.w3.to_wei(gas_price * 2, "wei"))
        tx.setdefault("maxPriorityFeePerGas", self.w3.to_wei(0, "wei"))
        signed = acct.sign_transaction(tx)  # type: ignore[arg-type]  # eth-account's dict type is narrower than web3's TxParams
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        if receipt["status"] != 1:
            raise ContractReverted(label[0], label[1], "transaction failed")
        return receipt

    def deploy(self, contract: str, args: tuple[AbiArg, ...], sender: str) -> BoundContract[Web3Contract]:
        abi, bytecode = abi_and_bytecode(contract)
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        tx = factory.constructor(*args).build_transaction({"from": sender, "gas": 8_000_000})
        receipt = self.transact(tx, sender, (contract, "__init__"))
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deploying {contract} created no contract", hint="check the node's logs")
        return BoundContract(self, contract, self.w3.eth.contract(address=address, abi=abi), str(address))

    def call(self, handle: Web3Contract, contract: str, fn: str, args: tuple[AbiArg, ...]) -> AbiValue:
        try:
            return getattr(handle.functions, fn)(*args).call()
        except Exception as exc:
            raise ContractReverted(contract, fn, _rpc_reason(exc)) from None

    def send(
        self, handle: Web3Contract, contract: str, fn: str, args: tuple[AbiArg, ...], sender: str
    ) -> Receipt:
        try:
            tx = getattr(handle.functions, fn)(*args).build_transaction({"from": sender, "gas": 1})
        except Exception as exc:
            raise ContractReverted(contract, fn, _rpc_reason(exc)) from None
        for fee in ("gas", "maxFeePerGas", "maxPriorityFeePerGas", "gasPrice"):
            tx.pop(fee, None)  # estimated again when the transaction is signed
        receipt = self.transact(tx, sender, (contract, fn))
        return Receipt(int(receipt["gasUsed"]), receipt["transactionHash"].hex())

    def new_account(self) -> str:
        from eth_account import Account  # loaded with the backend

        acct = Account.create()
        self.keys[acct.address] = acct
        tx: TxParams = {"to": acct.address, "value": self.fund_wei, "gas": 21_000}
        self.transact(tx, self.deployer.address, ("eth", "transfer"))
        return str(acct.address)

    def timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def warp(self, timestamp: int) -> None:
        try:
            self.w3.provider.make_request("evm_setNextBlockTimestamp", [int(timestamp)])  # type: ignore[arg-type]
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        except Exception as exc:
            raise ChainError(
                f"this node cannot move its clock: {exc}", hint="use a dev node (anvil)"
            ) from exc


def _rpc_reason(exc: Exception) -> str:
    text = str(exc)
    m = re.search(r"execution reverted:?\s*([^'\"]*)", text)
    return m.group(1).strip() if m and m.group(1).strip() else text[:200]
