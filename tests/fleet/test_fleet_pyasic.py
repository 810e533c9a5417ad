"""Real, unmodified pyasic against the emulated Whatsminers: detection, reads, control, scan."""

from __future__ import annotations

import asyncio

import pytest

from drakewell.fleet.emulator import EmulatedFleet, EmulatorConfig
from drakewell.fleet.miners import PyasicMinerDriver, load_pyasic, scan_subnet

pyasic = pytest.importorskip("pyasic")


def run(coro):
    return asyncio.run(coro)


def test_pyasic_detects_an_emulated_whatsminer_as_its_btminer_v2_class() -> None:
    async def scenario() -> None:
        async with EmulatedFleet(EmulatorConfig(count=1, first_ip="127.13.1.1")) as emu:
            miner = await pyasic.get_miner("127.13.1.1")
            assert type(miner).__name__ == "BTMinerM30SPlusV40"
            assert "BTMinerV2" in [c.__name__ for c in type(miner).__mro__]
            assert emu.miners["127.13.1.1"].commands[:2] in (
                ["version", "devdetails"],
                ["devdetails", "version"],
            )

    run(scenario())


def test_reads_sleep_wake_and_power_limit_through_pyasic_with_ramps() -> None:
    async def scenario() -> None:
        config = EmulatorConfig(count=1, first_ip="127.13.2.1", ramp_s=1.0)
        async with EmulatedFleet(config) as emu:
            miner = emu.miners["127.13.2.1"]
            driver = await PyasicMinerDriver.detect("127.13.2.1")
            assert driver is not None and driver.supports_power_limit
            reading = await driver.read()
            assert reading is not None
            assert (reading.power_w, reading.power_limit_w, reading.mining) == (3400.0, 3400.0, True)
            assert reading.hashrate_th_s == pytest.approx(100.0)

            assert await driver.sleep() is True
            assert miner.mining is False
            mid = await driver.read()  # the draw ramps: neither full nor asleep yet
            assert mid is not None and mid.mining is False and 12.0 < mid.power_w < 3400.0
            await asyncio.sleep(1.1)
            asleep = await driver.read()
            assert asleep is not None and asleep.power_w == 12.0 and asleep.hashrate_th_s == 0.0

            assert await driver.wake() is True
            assert await driver.set_power_limit(2000) is True
            await asyncio.sleep(1.1)
            limited = await driver.read()
            assert limited is not None and limited.mining is True
            assert (limited.power_w, limited.power_limit_w) == (2000.0, 2000.0)
            assert limited.hashrate_th_s == pytest.approx(100.0 * (2000 - 12) / (3400 - 12))
            # out of the firmware's range: refused, nothing changes
            assert await driver.set_power_limit(100) is False
            assert miner.power_limit_w == 2000.0
            privileged = [c for c in miner.commands if c.startswith("priv:")]
            assert privileged == [
                "priv:power_off",
                "priv:power_on",
                "priv:adjust_power_limit",
                "priv:adjust_power_limit",
            ]
            assert miner.commands.count("get_token") == 1  # one token, reused (pyasic keeps it 30 min)

    run(scenario())


def test_only_a_client_that_knows_the_password_may_command_a_miner() -> None:
    async def scenario() -> None:
        async with EmulatedFleet(EmulatorConfig(count=1, first_ip="127.13.3.1", password="s3cret")) as emu:
            miner = emu.miners["127.13.3.1"]
            intruder = await pyasic.get_miner("127.13.3.1")
            # pyasic's default password is "admin": its token and AES key are wrong for this miner
            assert await intruder.stop_mining() is False
            assert miner.mining is True
            owner = await pyasic.get_miner("127.13.3.1")
            owner.rpc.pwd = "s3cret"
            assert await owner.stop_mining() is True
            assert miner.mining is False

    run(scenario())


def test_a_token_not_issued_by_the_miner_is_refused() -> None:
    miner = EmulatedFleet(EmulatorConfig(count=1, first_ip="127.13.4.1")).miners["127.13.4.1"]
    import base64
    import hashlib
    import json

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    # the right key (the miner's password hash) but a made-up token
    key = hashlib.sha256(miner._passwd_md5.encode()).digest()
    text = json.dumps({"cmd": "power_off", "token": "forged"})
    text += "\0" * (-len(text) % 16)
    sealed = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(text.encode())
    reply = json.loads(
        miner.handle(json.dumps({"enc": 1, "data": base64.b64encode(sealed).decode()}).encode())
    )
    assert reply["STATUS"] == "E" and reply["Msg"] == "invalid token"
    assert miner.mining is True


def test_subnet_scan_finds_exactly_the_emulated_miners() -> None:
    async def scenario() -> None:
        load_pyasic()
        async with EmulatedFleet(EmulatorConfig(count=4, first_ip="127.13.5.3")):
            found = await scan_subnet("127.13.5.0/28", timeout_s=60)
        assert [m.ip for m in found] == ["127.13.5.3", "127.13.5.4", "127.13.5.5", "127.13.5.6"]
        assert {m.catalog_model for m in found} == {"M30S+"}

    run(scenario())
