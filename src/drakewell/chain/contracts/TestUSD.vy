# pragma version ~=0.4.3
"""
@title TestUSD
@notice A 6-decimal stablecoin the deployer can mint: for the embedded default and tests only.
        On a real network the configured stablecoin address is used instead.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
def __init__():
    ownable.__init__()
    erc20.__init__("Drakewell Test USD", "tUSD", 6, "Drakewell Test USD", "1")
