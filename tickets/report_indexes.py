"""Indexes the reports read by (migration 0015), kept beside the report queries' tables.

Each report filters one table on one time column over the chosen period: tickets by
creation (first response) and by solve (resolution), SLA clocks by due time (hit rate),
bot replies by time (containment, hand-off reasons) and the bot's state by hand-off time
(agents taking over). CSAT already has `ix_csat_surveys_rated_at`.
"""

from __future__ import annotations

from sqlalchemy import Index

from bot.models import BotConversation, BotReply
from tickets.models import Ticket
from tickets.sla_models import SlaClock

REPORT_INDEXES = (
    Index("ix_tickets_created_at", Ticket.created_at),
    Index("ix_tickets_solved_at", Ticket.solved_at),
    Index("ix_sla_clocks_due_at", SlaClock.due_at, SlaClock.status),
    Index("ix_bot_replies_created_at", BotReply.created_at),
    Index("ix_bot_conversations_handed_off_at", BotConversation.handed_off_at),
)
