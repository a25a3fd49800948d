"""The email channel. Raw RFC 822 bytes arrive through the SMTP ingress (`ingress`) or
IMAP polling (`imap`) and are filed like a webhook delivery; `adapter` parses them
(`parse`, with `decode`, `html`, `quotes`, `loops`, `authresults`) and sends replies over
SMTP (`compose`); `threading` holds the database side: which conversation a mail
belongs to, and the reply token, In-Reply-To and References of our answers.
"""
