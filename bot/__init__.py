"""The intent bot: NLU engines (built-in, Rasa), the dialogue policy and hand-off.
Not built yet (issue 4); it will read the knowledge base and reply through
`conversations`.
"""
