"""FAQ articles, their versions, search and import/export (including Rasa training
data). Not built yet (issue 4); imports only `switchboard` foundations.
"""
