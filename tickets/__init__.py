"""Tickets: what a person must answer. A ticket covers one or more conversations of one
customer and carries status (lifecycle in `lifecycle`), priority, tags, subject,
assignee, internal notes and a timeline of every change; `service` opens and changes
them, `merge` merges them, `followup` turns customer messages into opened, reopened or
answered tickets, `listing` and `access` serve the API. SLA policies (`sla*`) and CSAT
(`csat*`: rating requests, answers, the report) live here too. May import
`conversations`, `customers` and `switchboard`; never `web`, `bot` or `routing` (which
import it).
"""
