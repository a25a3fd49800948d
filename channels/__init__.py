"""Channel adapters, one sub-package per channel (webchat/, later telegram/, slack/,
email/). `channels.base` is the contract: pure `verify` and `parse` on a
framework-neutral `RawInbound`, and `send` for delivery. Adapters import nothing else
from Switchboard.
"""
