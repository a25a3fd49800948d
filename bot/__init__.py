"""The intent bot: NLU engines (builtin, Rasa) behind one contract (`engines`), the
serving model kept in step with the published knowledge base (`training`, `runtime`),
the dialogue policy (`policy`: pure decisions — answer, clarify, small talk, hand off),
and the bot's turn in the message path (`service`, `worker`): claimed from the
database, answered through `conversations.service.do_reply`, explained per message, and
handed off to people with a ticket (`tickets`). It may import `knowledge_base`,
`conversations`, `customers`, `tickets` and `switchboard`; nothing imports it but the
assembly (`switchboard`) and `web`.
"""
