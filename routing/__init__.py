"""Routing rules, queues, assignment strategies, presence and capacity. Not built yet
(issue 5); will import `tickets`.
"""
