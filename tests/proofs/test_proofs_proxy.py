"""The Stratum proxy between emulated miners and an emulated pool, all on loopback addresses."""

from __future__ import annotations

import asyncio
import json

import pytest

from drakewell.core.errors import ProofError
from drakewell.proofs.emulate import EmulatedMiner, EmulatedPool, MinerReport, difficulty_for_share_odds
from drakewell.proofs.proxy import StratumProxy, WorkerTally

ODDS = 16  # about one hash in 16 is a share
T0 = 7_200.0


async def _run_site(
    miners: list[dict[str, object]], clock: list[float]
) -> tuple[list[MinerReport], dict[str, WorkerTally], EmulatedPool, StratumProxy]:
    async with EmulatedPool(difficulty_for_share_odds(ODDS), seed=7) as pool:
        proxy = StratumProxy(*pool.address, epoch_seconds=3_600, clock=lambda: clock[0])
        async with proxy:
            host, port = proxy.listen
            reports = await asyncio.gather(
                *(
                    EmulatedMiner(host, port, source_host=f"127.0.1.{17 + i}", **spec).run()  # type: ignore[arg-type]
                    for i, spec in enumerate(miners)
                )
            )
            clock[0] += 600.0
            tallies = {t.worker: t for t in proxy.tallies()}
        return list(reports), tallies, pool, proxy


def test_proxy_counts_real_shares_and_catches_cheaters() -> None:
    clock = [T0]
    miners = [
        {"worker": "site.honest", "nonces": 400, "extranonces": 2, "version_rolling": True},
        {"worker": "site.invalid", "nonces": 400, "cheat": "invalid"},
        {"worker": "site.dupes", "nonces": 400, "cheat": "duplicate"},
    ]
    reports, tallies, pool, proxy = asyncio.run(_run_site(miners, clock))
    honest, invalid, dupes = reports
    assert honest.shares_found > 20  # 800 hashes at 1 in 16
    t = tallies["site.honest"]
    assert (t.accepted, t.rejected, t.pool_accepted, t.pool_rejected) == (
        honest.shares_found,
        0,
        honest.shares_found,
        0,
    )
    assert t.work_hashes == pytest.approx(t.accepted * (2**256 / (proxy_target(pool) + 1)))
    # the invalid cheater: every real share credited, every bad one caught, none credited
    t = tallies["site.invalid"]
    assert t.accepted == invalid.shares_found and t.invalid == invalid.submitted - invalid.shares_found > 0
    assert t.pool_rejected == t.invalid  # the pool saw them too: forwarded unchanged
    t = tallies["site.dupes"]
    assert t.accepted == dupes.shares_found and t.duplicate == dupes.submitted - dupes.shares_found > 0
    # the proxy agrees with the pool's own verdicts, miner by miner
    for name, tally in tallies.items():
        assert tally.accepted == pool.accepted.get(name, 0) and tally.rejected == pool.rejected.get(name, 0)
    # miners received the pool's answers through the proxy
    assert invalid.answers.count(False) == tallies["site.invalid"].invalid
    # the estimate over the 600 s window is the credited work per second, and its interval holds the
    # rate each miner really hashed at (at 99.9 %: three intervals, one seeded run; coverage at the
    # stated confidence over many trials is tested in test_proofs_stratum)
    est = proxy.estimates(clock[0], confidence=0.999)
    for report in reports:
        e = est[(report.worker, int(T0 // 3_600))]
        assert e.hashes_per_s == pytest.approx(tallies[report.worker].work_hashes / 600.0)
        assert e.low_per_s <= report.hashes / 600.0 <= e.high_per_s


def proxy_target(pool: EmulatedPool) -> int:
    from drakewell.proofs.stratum import target_for_difficulty

    return target_for_difficulty(pool.difficulty)


def test_shares_fall_into_the_epoch_of_the_proxy_clock() -> None:
    clock = [3_600.0 * 5 + 10]
    miners = [{"worker": "a", "nonces": 200}]
    _, tallies, _, proxy = asyncio.run(_run_site(miners, clock))
    assert tallies["a"].epoch == 5 and proxy.epoch_of(3_600.0 * 6) == 6


def test_lines_are_forwarded_byte_for_byte() -> None:
    """A recording pool sees exactly what the client sent, and the client exactly what it answered."""
    seen_by_pool: list[bytes] = []
    reply = b'{"id": 1,   "result": [[["mining.notify", "x"]], "0000abcd", 4], "error": null}\n'

    async def recording_pool(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            seen_by_pool.append(line)
            if b"subscribe" in line:
                writer.write(reply + b"not json at all\n")
                await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> list[bytes]:
        server = await asyncio.start_server(recording_pool, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()[:2]
        async with StratumProxy(host, port) as proxy:
            r, w = await asyncio.open_connection(*proxy.listen)
            sent = [b'{"id":1,"method":"mining.subscribe","params":[]}\n', b"garbage {\n"]
            for line in sent:
                w.write(line)
            await w.drain()
            got = [await r.readline(), await r.readline()]
            w.close()
            await w.wait_closed()
        server.close()
        await server.wait_closed()
        assert seen_by_pool == sent
        return got

    assert asyncio.run(main()) == [reply, b"not json at all\n"]


def test_a_submit_with_bad_params_is_counted_as_malformed() -> None:
    async def main() -> WorkerTally:
        async with EmulatedPool(1.0) as pool, StratumProxy(*pool.address) as proxy:
            r, w = await asyncio.open_connection(*proxy.listen)
            w.write(json.dumps({"id": 9, "method": "mining.submit", "params": ["x", 1]}).encode() + b"\n")
            await w.drain()
            await r.readline()  # the pool's answer, forwarded
            w.close()
            await w.wait_closed()
            [tally] = proxy.tallies()
            return tally

    tally = asyncio.run(main())
    assert tally.malformed == 1 and tally.accepted == 0


def test_proxy_listens_only_on_loopback() -> None:
    with pytest.raises(ProofError, match="loopback"):
        StratumProxy("127.0.0.1", 3333, listen_host="0.0.0.0")
    with pytest.raises(ProofError, match="epoch"):
        StratumProxy("127.0.0.1", 3333, epoch_seconds=0)
