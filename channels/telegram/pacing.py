"""Telegram's limits (the Bot API FAQ, PTB's constants): about one message per second
per chat, 20 per minute per group and 30 per second for the bot as a whole."""

from __future__ import annotations

from channels.pacing import Clock, Pacer, Sleep

PER_CHAT_INTERVAL = 1.0
PER_GROUP_INTERVAL = 3.0  # 20 per minute
OVERALL_INTERVAL = 1 / 30


def chat_interval(chat_id: int) -> float:
    # Group and supergroup ids are negative; users' ids positive.
    return PER_GROUP_INTERVAL if chat_id < 0 else PER_CHAT_INTERVAL


def telegram_pacer(clock: Clock, sleep: Sleep) -> Pacer[int]:
    return Pacer(chat_interval, overall=OVERALL_INTERVAL, clock=clock, sleep=sleep)
