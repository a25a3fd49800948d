"""The Telegram channel: a bot's webhook in, the Bot API (python-telegram-bot) out.

`updates` turns a webhook body into channel events (pure), `sending` plans and paces
outbound messages and maps the Bot API's errors, `adapter` ties them to one inbox's
bot. Imports only `channels.base` and python-telegram-bot.
"""
