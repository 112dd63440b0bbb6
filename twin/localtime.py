"""Local wall-clock times as instants: the one conversion for every naive local time of a week
(calendar windows, downtime in week.toml, `--from/--to`).

A local time is the first instant the wall clock shows it (or a later time): a time the clocks skip
in spring is the instant of the switch, a time they show twice in autumn is its first occurrence.
Attaching the zone directly (`replace(tzinfo=...)`) would instead read a skipped time with the
offset before the switch (up to an hour late) and take whichever occurrence `fold` happens to say.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def first_instant(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The instant (aware, in `tz`) of the naive local time `local` by the rule above; an aware
    `local` is already an instant and is only expressed in `tz`."""
    if local.tzinfo is not None:
        return local.astimezone(tz)
    first, second = local.replace(tzinfo=tz, fold=0), local.replace(tzinfo=tz, fold=1)
    before, after = first.utcoffset() or dt.timedelta(), second.utcoffset() or dt.timedelta()
    if after <= before:  # an ordinary time, or one shown twice (fold=0 is the first occurrence)
        return dt.datetime.fromtimestamp(first.timestamp(), tz)
    # skipped: `second` (the offset after the switch) lies before the switch, `first` after it
    lo, hi = int(second.timestamp()), int(first.timestamp()) + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return dt.datetime.fromtimestamp(hi, tz)
