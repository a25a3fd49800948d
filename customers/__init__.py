"""Customer records and their identities on each channel (a visitor id, a Telegram
user, an email address): resolving a message's sender to one customer (service),
identified web-chat visitors (identify), merge suggestions (suggestions), merging
and unmerging records (merge), and the profile staff keep: tier, lifecycle stage, tags,
attributes and notes (profile). Imports `switchboard` foundations and, for the rows a
merge moves and the inbox's identity secret, `conversations.models`; never the web layer.
"""
