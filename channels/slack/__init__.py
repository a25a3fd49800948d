"""The Slack channel: the Events API in through slack-bolt, the Web API (slack_sdk) out.

`signature` and `events` are pure: the signed raw bytes in, channel events out. `bolt`
builds the inbox's bolt app, whose one listener files deliveries; `pacing` keeps replies
to about one per second per channel; `mrkdwn` reads and escapes Slack's markup; `adapter`
ties them to one inbox. Imports only `channels.base`, slack_bolt, slack_sdk and aiohttp;
the web route is `web.slack_events`.
"""
