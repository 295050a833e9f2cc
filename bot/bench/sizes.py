"""How much each phase of the benchmark does."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Sizes:
    """How much each phase does; the defaults are the issue's."""

    decisions: int = 2000
    """Decisions timed click → wake (and ask → post), once at a steady rate and once as a burst."""
    rate: float = 200.0
    """Asks and clicks per second in the steady phase."""
    waits: int = 10_000
    """Concurrent ``can_use_tool`` waits in the agent process."""
    throughput: int = 2000
    """Clicks per worker-throughput run."""
    concurrency: int = 32
    """Clicks in flight at once in the burst and throughput phases."""
    floor_samples: int = 2000
    """Round trips timed for each floor."""
    limited_requests: int = 60
    """Requests asked at once in the phase under Slack's rate limits."""
    limited_channels: int = 2
    """Channels those requests are posted to."""
    limited_agents: int = 4
    """Agents (``SlackApprover``s) asking them; agent ``i`` posts to channel ``i mod channels``."""
    limited_workers: int = 2
    """``serve`` workers sharing Slack's limits in that phase."""
    slack_rate_scale: float = 6.0
    """Slack's rates sped up this many times, for the stand-in and the workers (``SLACK_RATE_SCALE``)."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be positive")
        if self.limited_agents < self.limited_channels:
            raise ValueError("limited_agents must be at least limited_channels: each channel needs an agent")
