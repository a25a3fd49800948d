"""Routing: queues (teams) and their members, agents' capacity, skills, languages and
presence, routing rules applied when a ticket opens, and the assignment strategies and
worker that give waiting tickets to available agents. Imports `tickets` (models,
service, SLA calendars), `conversations`, `customers`, `bot` (models) and `switchboard`;
`tickets` calls back into `routing.rulebook` only from `_insert_ticket`.
"""
