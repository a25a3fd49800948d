"""Each strategy's fairness over 1,000 simulated tickets, with the bound it keeps.

- round-robin: equal capacities, the open-ticket counts differ by at most 1 at any time;
- least-loaded: with random priorities (weights 1 to 4) and nothing closed, the weighted
  loads differ by at most 4 (one urgent ticket) at any time; with tickets closing at
  random, every ticket goes to an agent whose weighted load was the lowest among those
  with room;
- capacity: nobody ever holds more than their capacity; a full team takes nothing;
- skills: a ticket goes to a matching agent whenever one has room, else to anyone.
"""

from __future__ import annotations

import random

from routing.assignment import PRIORITY_WEIGHT, Candidate, WaitingTicket, choose
from routing.models import Strategy

PRIORITIES = list(PRIORITY_WEIGHT)


def team(n: int, capacity: int = 10_000) -> list[Candidate]:
    return [Candidate(user_id=i + 1, capacity=capacity) for i in range(n)]


def assign(strategy: str, agents: list[Candidate], ticket: WaitingTicket, last: int | None) -> int:
    chosen = choose(strategy, agents, ticket, last)
    assert chosen is not None
    chosen.take(ticket.priority)
    return chosen.user_id


def test_round_robin_spread_is_at_most_one_over_1000_tickets() -> None:
    agents = team(7)
    last = None
    for i in range(1000):
        last = assign(Strategy.ROUND_ROBIN, agents, WaitingTicket(i, "normal"), last)
        counts = [a.open_count for a in agents]
        assert max(counts) - min(counts) <= 1
    assert sorted(a.open_count for a in agents) == [142] * 1 + [143] * 6


def test_round_robin_skips_agents_at_capacity_and_keeps_turns() -> None:
    agents = team(3)
    agents[1].capacity = 2
    last = None
    order = []
    for i in range(8):
        last = assign(Strategy.ROUND_ROBIN, agents, WaitingTicket(i, "normal"), last)
        order.append(last)
    assert order == [1, 2, 3, 1, 2, 3, 1, 3]
    assert agents[1].open_count == 2


def test_least_loaded_weighted_spread_is_at_most_one_urgent_ticket() -> None:
    rng = random.Random(5)
    agents = team(9)
    last = None
    for i in range(1000):
        ticket = WaitingTicket(i, rng.choice(PRIORITIES))
        last = assign(Strategy.LEAST_LOADED, agents, ticket, last)
        loads = [a.weighted_load for a in agents]
        assert max(loads) - min(loads) <= PRIORITY_WEIGHT["urgent"]


def test_least_loaded_always_picks_a_lowest_loaded_agent_while_tickets_close() -> None:
    rng = random.Random(11)
    agents = team(12, capacity=8)
    held: dict[int, list[str]] = {a.user_id: [] for a in agents}
    last = None
    for i in range(1000):
        # About as many tickets close as open, at random.
        for agent in agents:
            if held[agent.user_id] and rng.random() < 0.08:
                priority = held[agent.user_id].pop(rng.randrange(len(held[agent.user_id])))
                agent.open_count -= 1
                agent.weighted_load -= PRIORITY_WEIGHT[priority]
        ticket = WaitingTicket(i, rng.choice(PRIORITIES))
        with_room = [a for a in agents if a.has_room]
        if not with_room:
            assert choose(Strategy.LEAST_LOADED, agents, ticket, last) is None
            continue
        lowest = min(a.weighted_load for a in with_room)
        chosen = choose(Strategy.LEAST_LOADED, agents, ticket, last)
        assert chosen is not None and chosen.weighted_load == lowest
        chosen.take(ticket.priority)
        held[chosen.user_id].append(ticket.priority)
        last = chosen.user_id
        assert all(a.open_count <= a.capacity for a in agents)


def test_nobody_goes_over_capacity_and_a_full_team_takes_nothing() -> None:
    agents = team(4, capacity=25)
    for strategy in Strategy:
        for agent in agents:
            agent.open_count = agent.weighted_load = 0
        taken = 0
        last = None
        for i in range(1000):
            chosen = choose(strategy, agents, WaitingTicket(i, "high"), last)
            if chosen is None:
                continue
            chosen.take("high")
            last = chosen.user_id
            taken += 1
        assert taken == 100
        assert [a.open_count for a in agents] == [25, 25, 25, 25]


def test_skills_match_first_then_fall_back_to_anyone_with_room() -> None:
    agents = [
        Candidate(1, capacity=50, languages=frozenset({"de"})),
        Candidate(2, capacity=50, languages=frozenset({"en"}), skills=frozenset({"billing"})),
        Candidate(3, capacity=50, languages=frozenset({"en", "de"})),
    ]
    rng = random.Random(3)
    last = None
    for i in range(1000):
        kind = rng.choice(["de", "billing", "any"])
        ticket = WaitingTicket(
            i,
            "normal",
            language="de-AT" if kind == "de" else "en",
            skills=frozenset({"billing"}) if kind == "billing" else frozenset(),
        )
        matching_with_room = [
            a
            for a in agents
            if a.has_room
            and (ticket.language or "").split("-")[0] in a.languages
            and ticket.skills <= a.skills
        ]
        chosen = choose(Strategy.SKILLS, agents, ticket, last)
        if chosen is None:
            assert not any(a.has_room for a in agents)
            continue
        if matching_with_room:
            assert chosen in matching_with_room
        chosen.take(ticket.priority)
        last = chosen.user_id
    # 150 places for 1,000 tickets: all filled, by matching agents first.
    assert [a.open_count for a in agents] == [50, 50, 50]
