"""Imports every package's tables so `Base.metadata` is complete (Alembic, tests)."""

from bot import models as bot_models
from channels.email import models as email_models
from conversations import assist_models as conversations_assist_models
from conversations import history_index as conversations_history_index
from conversations import inbox_models as conversations_inbox_models
from conversations import models as conversations_models
from conversations import search_terms as conversations_search_terms
from customers import models as customers_models
from knowledge_base import models as knowledge_base_models
from routing import models as routing_models
from switchboard import audit as switchboard_audit
from switchboard import models as switchboard_models
from switchboard.db import Base
from tickets import csat_models as tickets_csat_models
from tickets import models as tickets_models
from tickets import report_indexes as tickets_report_indexes
from tickets import sla_models as tickets_sla_models

metadata = Base.metadata

__all__ = [
    "bot_models",
    "conversations_assist_models",
    "conversations_history_index",
    "conversations_inbox_models",
    "conversations_models",
    "conversations_search_terms",
    "customers_models",
    "email_models",
    "knowledge_base_models",
    "metadata",
    "routing_models",
    "switchboard_audit",
    "switchboard_models",
    "tickets_csat_models",
    "tickets_models",
    "tickets_report_indexes",
    "tickets_sla_models",
]
