# pragma version ~=0.4.3
"""
@title PlainToken
@notice An unmodified snekmate ERC-20: the gas benchmark's anchor for a plain transfer.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
def __init__():
    ownable.__init__()
    erc20.__init__("Plain", "PLN", 18, "Plain", "1")
