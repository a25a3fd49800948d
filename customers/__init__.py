"""Customer records and their identities on each channel (a visitor id, a Telegram
user, an email address): resolving a message's sender to one customer. Imports only
`switchboard` foundations.
"""
