"""The Lua scripts: each changes a request and everything that follows from the
change (deadline index, votes, job for the workers, audit entry, wake-up) in
one atomic step, so no worker ever sees half a transition and only one of
several racing workers acts.

Each script opens with a header naming its KEYS, its ARGV and its results,
and names its ARGV as locals first. Names Python shares with them (audit
events, job kinds, states, key prefixes, TTLs) are filled in by ``fill``.

KEYS of the request scripts are always ``keys.script_keys(id)``:
1 request hash, 2 deadlines zset, 3 jobs stream, 4 audit stream,
5 audit head (hash of the last entry), 6 votes hash, 7 pending index,
8 audit anchor, 9 pending count per route, 10 audit cap;
their ARGV[1] is always the request's id. A few keys derived from request
fields (group caches, the thread index) are still named inside the scripts:
see ``keys`` on Redis Cluster. The routes' spend counters are another slot's:
only ``spend``'s scripts touch them, and the request scripts get a reservation
on them in ARGV (``approvals.spend``). Every script starts with
``#!lua`` (``fill.SHEBANG``).
"""
