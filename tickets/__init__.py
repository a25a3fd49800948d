"""Tickets, their lifecycle, SLA policies and timers, and CSAT. Not built yet (issue 5);
will import `conversations` and `customers`.
"""
