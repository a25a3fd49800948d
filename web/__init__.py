"""The aiohttp edge: login and sessions, the agent inbox and its live socket, the
web-chat widget's endpoints, and the REST API under /api/v1. Every read goes through
`web.access`. May import every domain package; none of them imports `web`.
"""
