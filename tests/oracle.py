"""An independent reference implementation of `problem.md`, written for clarity, not speed.

It moves one unit at a time and processes each instant in the literal same-instant order
(downtime transitions, then steps 1-4). Tests compare the twin against it: same decisions in,
same KPIs and same action masks out. It shares no code with the twin's engine; it only reads the
compiled scenario (plans, unit times, downtime on the working-time axis).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twin.scenario import Scenario


@dataclass
class OracleResult:
    idle_by_station: list[int]
    setup_effort: float
    setups: int
    consumed: int
    produced: int
    deadlock: bool
    end_s: int
    pas_busy_s: int
    pas_blocked_s: int
    max_fill: int
    max_fill_by_type: list[int]
    area_by_type: list[int]
    final_stock: list[int]
    valid_sets: list[tuple[int, ...]] = field(default_factory=list)
    decision_times: list[int] = field(default_factory=list)


def _down(intervals: tuple[tuple[int, int], ...], t: int) -> bool:
    return any(a <= t < b for a, b in intervals)


def run_oracle(sc: Scenario, decisions: list[tuple[int, int]], max_time: int = 10**7) -> OracleResult:
    """Simulate `sc` with the PAS batches `decisions` [(type, quantity)] in this order."""
    n = len(sc.types)
    nf = len(sc.stations)
    stock = list(sc.initial_stock)
    cap = sc.line.buffer.capacity
    plans = [[k for k, q in plan for _ in range(q)] for plan in sc.plans]  # one entry per unit
    pos = [0] * nf  # units taken so far
    finish: list[int | None] = [None] * nf  # end of the unit in progress
    remaining_work = [0] * nf
    waiting = [False] * nf
    done = [len(p) == 0 for p in plans]
    fas_down = [False] * nf
    idle = [0] * nf
    pas_down = False
    pas_state = "idle"  # idle | producing | blocked | stopped
    pas_type: int | None = None
    pas_qty = 0
    pas_finish = 0
    pas_remaining = 0
    last = sc.initial_setup
    effort = 0.0
    setups = 0
    produced = 0
    busy = 0
    blocked = 0
    next_decision = 0
    result = OracleResult([0] * nf, 0.0, 0, 0, 0, False, 0, 0, 0, 0, [0] * n, [0] * n, [])
    area = [0] * n
    max_fill = 0
    max_by_type = [0] * n
    pas_dt = sc.downtime[nf]
    transitions = sorted({t for iv in sc.downtime for a, b in iv for t in (a, b)})
    t = 0
    first = True
    deadlock = False
    while True:
        # phase 0: downtime transitions at t
        for f in range(nf):
            now_down = _down(sc.downtime[f], t)
            if now_down and not fas_down[f]:
                fas_down[f] = True
                if finish[f] is not None:
                    remaining_work[f] = finish[f] - t  # type: ignore[operator]
                    finish[f] = None
                waiting[f] = False
            elif not now_down and fas_down[f]:
                fas_down[f] = False
                if not done[f]:
                    finish[f] = t + remaining_work[f]
                    remaining_work[f] = 0
        now_pas_down = _down(pas_dt, t)
        if now_pas_down and not pas_down:
            pas_down = True
            if pas_state == "producing":
                pas_remaining = pas_finish - t
        elif not now_pas_down and pas_down:
            pas_down = False
            if pas_state == "producing":
                pas_finish = t + pas_remaining

        def start_unit(f: int, t: int) -> None:
            if pos[f] == len(plans[f]):
                done[f] = True
                waiting[f] = False
                finish[f] = None
                return
            k = plans[f][pos[f]]
            if stock[k] > 0:
                stock[k] -= 1
                pos[f] += 1
                finish[f] = t + sc.fas_unit_s[f]
                waiting[f] = False
            else:
                waiting[f] = True
                finish[f] = None

        # step 1: FAS that finish a unit (or start at time 0) start the next, in station order
        for f in range(nf):
            if not done[f] and not fas_down[f] and (finish[f] == t or (first and finish[f] is None)):
                start_unit(f, t)
        if all(done):  # the run ends when the last FAS finishes; later steps of the instant do not happen
            break
        # step 2: a finished or blocked batch enters if there is space
        arrived = None
        if not pas_down and ((pas_state == "producing" and pas_finish == t) or pas_state == "blocked"):
            if pas_state == "producing":
                busy += 0  # busy time is integrated between instants
            if cap - sum(stock) >= pas_qty:
                assert pas_type is not None
                stock[pas_type] += pas_qty
                produced += pas_qty
                arrived = pas_type
                pas_state = "idle"
            else:
                pas_state = "blocked"
        # step 3: FAS waiting for the arrived type start, in station order
        if arrived is not None:
            for f in range(nf):
                if waiting[f] and not fas_down[f] and plans[f][pos[f]] == arrived:
                    start_unit(f, t)
        # step 4: the PAS decides
        if first or arrived is not None:
            max_fill = max(max_fill, sum(stock))
            max_by_type = [max(a, b) for a, b in zip(max_by_type, stock, strict=True)]
            need = [0] * n
            for f in range(nf):
                for k in plans[f][pos[f] :]:
                    need[k] += 1
            valid = tuple(k for k in range(n) if need[k] - stock[k] > 0)
            if not valid:
                pas_state = "stopped"
            else:
                result.valid_sets.append(valid)
                result.decision_times.append(t)
                k, q = decisions[next_decision]
                assert k in valid, f"decision {next_decision}: {k} not in {valid}"
                next_decision += 1
                change = last is not None and last != k
                if change:
                    assert last is not None
                    effort += sc.setup_effort[last][k]
                    setups += 1
                duration = q * sc.line.pas.unit_time_s + (sc.line.pas.setup_time_s if change else 0)
                last = k
                pas_type, pas_qty = k, q
                pas_state = "producing"
                if pas_down:
                    pas_remaining = duration
                else:
                    pas_finish = t + duration
        first = False
        if pas_state == "blocked" and cap - sum(stock) < pas_qty:
            can_take = False
            for f in range(nf):
                if done[f]:
                    continue
                in_progress = finish[f] is not None or (fas_down[f] and remaining_work[f] > 0)
                if in_progress or (pos[f] < len(plans[f]) and stock[plans[f][pos[f]]] > 0):
                    can_take = True
            if not can_take:
                deadlock = True
                break
        # next instant
        candidates = [x for f, x in enumerate(finish) if x is not None and not fas_down[f]]
        if pas_state == "producing" and not pas_down:
            candidates.append(pas_finish)
        candidates += [x for x in transitions if x > t]
        assert candidates, "stalled"
        nxt = min(candidates)
        assert nxt > t and nxt < max_time
        dt = nxt - t
        for f in range(nf):
            if waiting[f] and not fas_down[f] and not done[f]:
                idle[f] += dt
        if pas_state == "producing" and not pas_down:
            busy += dt
        if pas_state == "blocked" and not pas_down:
            blocked += dt
        for k in range(n):
            area[k] += stock[k] * dt
        t = nxt
    max_fill = max(max_fill, sum(stock))
    max_by_type = [max(a, b) for a, b in zip(max_by_type, stock, strict=True)]
    result.idle_by_station = idle
    result.setup_effort = effort
    result.setups = setups
    result.consumed = sum(pos)
    result.produced = produced
    result.deadlock = deadlock
    result.end_s = t
    result.pas_busy_s = busy
    result.pas_blocked_s = blocked
    result.max_fill = max_fill
    result.max_fill_by_type = max_by_type
    result.area_by_type = area
    result.final_stock = stock
    return result
