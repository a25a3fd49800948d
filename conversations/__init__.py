"""Inboxes, conversations and messages: intake of inbound messages (dedupe, threading,
sequence numbers), replies and internal notes, attachments, and the outbox that delivers
replies through channel adapters. Imports `customers`, `channels.base` and
`switchboard` foundations.
"""
