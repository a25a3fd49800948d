"""The assembly: settings, database engine, event bus, transactions, the app factory
(`create_app`), the CLI and the worker process. Domain packages import only its
foundations (`db`, `tx`, `events`, `errors`, `models` for users); `app` and `cli`
import everything.
"""
