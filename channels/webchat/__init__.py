"""The web-chat channel: visitor tokens, the widget's frame protocol and its adapter.

Pure code, framework-free: `web.widget` serves the HTTP and websocket edge and calls in
here to verify tokens and parse frames. Imports only `channels.base`.
"""
