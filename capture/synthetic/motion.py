"""Procedural multi-person motion: behaviours, smooth paths, collision avoidance, entries/exits.

The simulation runs at a fixed internal rate (``sim_hz``) independent of the output frame rate,
so any fps samples the same motion (poses are interpolated between simulation steps). It is
seeded and deterministic: steps are simulated in chunks, and a snapshot of the simulator state
(including its random generator) is kept at the start of every chunk, so any time can be
re-simulated exactly after its chunk was evicted from the cache (long live runs stay bounded
in memory).

Behaviours: ``walk`` (to a waypoint, turning smoothly, with gait), ``stand`` (idle sway, looking
around), ``reach`` (one or both arms), ``wave`` (arm swings), ``bend`` (trunk forward, arms
hanging), ``crouch``, ``sit`` (on an invisible stool), ``turn`` (in place). With entries/exits, a
person walks out of the area after a stay, is absent for a while, and a new person (new id, new
body) walks in from outside.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from capture.synthetic.body import (
    NUM_JOINTS,
    POSE_DIM,
    POSE_INDEX,
    Body,
    clamp_pose,
    forward_kinematics,
    neutral_pose,
    sample_body,
)

BEHAVIOURS = ("walk", "stand", "reach", "wave", "bend", "crouch", "sit", "turn")
# Probabilities of the next behaviour after a non-walking one / after walking.
_NEXT_AFTER_STILL = np.array([0.55, 0.10, 0.08, 0.07, 0.06, 0.05, 0.05, 0.04])
_NEXT_AFTER_WALK = np.array([0.20, 0.22, 0.15, 0.12, 0.10, 0.08, 0.08, 0.05])
_I = POSE_INDEX
_X, _Y, _YAW = _I["x_mm"], _I["y_mm"], _I["yaw"]
_MAX_RATE = 5.0  # rad/s, fastest joint rotation


@dataclass(frozen=True)
class MotionSettings:
    """Parameters of the crowd simulation.

    Attributes:
        num_people: number of person slots P (0..P people present at a time; 0 = empty room).
        walk_center_mm: (x, y) centre of the walkable disc.
        walk_radius_mm: radius of the walkable disc (waypoints lie inside it).
        entries_exits: people leave after a stay and new ones enter from outside the disc.
        min_separation_mm: pelvis-to-pelvis distance kept between present people.
        sim_hz: internal simulation rate.
        stay_s: (min, max) seconds a person stays before leaving (with entries_exits).
        absence_s: (min, max) seconds a slot stays empty after an exit.
        entry_margin_mm: how far outside the disc people appear / disappear.
        obstacles_mm: (x, y) points people keep ``obstacle_clearance_mm`` away from (cameras on
            tripods: nobody walks through them or fills a view with a giant close-up).
        obstacle_clearance_mm: clearance around each obstacle.
        obstacle_radii_mm: optional per-obstacle clearances (same length as ``obstacles_mm``),
            e.g. for furniture of different sizes; empty = ``obstacle_clearance_mm`` for all.
    """

    num_people: int
    walk_center_mm: tuple[float, float] = (0.0, 0.0)
    walk_radius_mm: float = 2000.0
    entries_exits: bool = True
    min_separation_mm: float = 650.0
    sim_hz: float = 50.0
    stay_s: tuple[float, float] = (12.0, 40.0)
    absence_s: tuple[float, float] = (1.0, 4.0)
    entry_margin_mm: float = 1500.0
    obstacles_mm: tuple[tuple[float, float], ...] = ()
    obstacle_clearance_mm: float = 900.0
    obstacle_radii_mm: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.num_people < 0:
            raise ValueError(f"MotionSettings.num_people must be >= 0, got {self.num_people}")
        if self.obstacle_radii_mm and len(self.obstacle_radii_mm) != len(self.obstacles_mm):
            raise ValueError("MotionSettings.obstacle_radii_mm must list one radius per obstacle")
        if self.walk_radius_mm <= 0 or self.sim_hz <= 0:
            raise ValueError("MotionSettings.walk_radius_mm and sim_hz must be positive")


@dataclass
class _Slot:
    """Mutable state of one person slot."""

    person_id: int
    present: bool
    body: Body
    pose: np.ndarray  # (POSE_DIM,) current (smoothed) pose
    target: np.ndarray  # (POSE_DIM,) posture target for the angle fields
    behaviour: str
    time_left: float
    clock: float  # seconds since the behaviour started
    params: dict
    goal: np.ndarray  # (2,) walk goal, mm
    speed: float  # current walking speed, mm/s
    phase: float  # gait phase, rad
    stay_left: float
    absent_left: float
    exiting: bool


class _Simulator:
    """The step-wise crowd simulation (all mutable state lives here, so it can be snapshotted)."""

    def __init__(self, settings: MotionSettings, seed: int) -> None:
        self.s = settings
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
        self.dt = 1.0 / settings.sim_hz
        self.next_id = 0
        self.bodies: dict[int, Body] = {}
        self.center = np.asarray(settings.walk_center_mm, dtype=np.float64)
        self.obstacles = [np.asarray(o, dtype=np.float64) for o in settings.obstacles_mm]
        self.obstacle_r = list(settings.obstacle_radii_mm) or [settings.obstacle_clearance_mm] * len(self.obstacles)
        self.slots: list[_Slot] = []
        for _ in range(settings.num_people):
            pos = self._free_point(self.s.walk_radius_mm * 0.9, [sl.pose[[_X, _Y]] for sl in self.slots])
            self.slots.append(self._new_slot(pos, yaw=self.rng.uniform(-np.pi, np.pi), entering=False))

    # ---------------------------------------------------------------- spawning
    def _free_point(self, radius: float, others: list[np.ndarray], tries: int = 200) -> np.ndarray:
        best, best_d = self.center.copy(), -1.0
        for _ in range(tries):
            r = radius * np.sqrt(self.rng.random())
            a = self.rng.uniform(-np.pi, np.pi)
            p = self.center + r * np.array([np.cos(a), np.sin(a)])
            if self._near_obstacle(p, 1.2):
                continue
            d = min((np.linalg.norm(p - o) for o in others), default=np.inf)
            if d >= self.s.min_separation_mm * 1.4:
                return p
            if d > best_d:
                best, best_d = p, d
        return best

    def _near_obstacle(self, p: np.ndarray, factor: float = 1.0) -> bool:
        return any(np.linalg.norm(p - o) < factor * r for o, r in zip(self.obstacles, self.obstacle_r))

    def _new_slot(self, pos: np.ndarray, yaw: float, entering: bool) -> _Slot:
        pid = self.next_id
        self.next_id += 1
        body = sample_body(self.rng)
        self.bodies[pid] = body
        pose = neutral_pose(pos[0], pos[1], yaw)
        slot = _Slot(
            person_id=pid,
            present=True,
            body=body,
            pose=pose,
            target=pose.copy(),
            behaviour="stand",
            time_left=0.0,
            clock=0.0,
            params={},
            goal=pos.copy(),
            speed=0.0,
            phase=0.0,
            stay_left=self.rng.uniform(*self.s.stay_s),
            absent_left=0.0,
            exiting=False,
        )
        if entering:
            self._start_walk(slot, self._free_point(self.s.walk_radius_mm * 0.8, self._others(slot)))
        else:
            self._start(slot, self._choose(_NEXT_AFTER_STILL))
        return slot

    def _others(self, slot: _Slot) -> list[np.ndarray]:
        return [o.pose[[_X, _Y]] for o in self.slots if o is not slot and o.present]

    def _choose(self, probs: np.ndarray) -> str:
        return BEHAVIOURS[int(self.rng.choice(len(BEHAVIOURS), p=probs / probs.sum()))]

    # ---------------------------------------------------------------- behaviours
    def _start_walk(self, slot: _Slot, goal: np.ndarray) -> None:
        slot.behaviour, slot.goal, slot.clock = "walk", goal, 0.0
        slot.params = {"speed": self.rng.uniform(700.0, 1500.0)}
        slot.time_left = 60.0  # ends on arrival; the cap only guards against being stuck

    def _start(self, slot: _Slot, behaviour: str) -> None:
        rng, t = self.rng, neutral_pose()
        slot.clock, slot.params = 0.0, {}
        if behaviour == "walk":
            self._start_walk(slot, self._free_point(self.s.walk_radius_mm, self._others(slot)))
            return
        duration = {
            "stand": (1.0, 4.0),
            "reach": (1.5, 3.5),
            "wave": (2.0, 4.0),
            "bend": (1.5, 3.5),
            "crouch": (2.0, 4.0),
            "sit": (3.0, 7.0),
            "turn": (1.0, 2.5),
        }[behaviour]
        slot.time_left = rng.uniform(*duration)
        sides = [s for s in "lr" if rng.random() < 0.6] or [rng.choice(["l", "r"])]
        if behaviour == "stand":
            t[_I["head_yaw"]] = rng.uniform(-0.8, 0.8)
            for s in "lr":
                t[_I[f"{s}_elbow"]] = rng.uniform(0.1, 1.2)
                t[_I[f"{s}_sho_flex"]] = rng.uniform(-0.2, 0.5)
        elif behaviour == "reach":
            for s in sides:
                t[_I[f"{s}_sho_flex"]] = rng.uniform(0.9, 2.9)
                t[_I[f"{s}_sho_abd"]] = rng.uniform(0.0, 1.0)
                t[_I[f"{s}_elbow"]] = rng.uniform(0.0, 0.6)
            t[_I["head_pitch"]] = rng.uniform(-0.4, 0.1)
        elif behaviour == "wave":
            slot.params = {"sides": sides, "freq": rng.uniform(0.8, 2.0), "amp": rng.uniform(0.4, 0.9)}
            for s in sides:
                t[_I[f"{s}_sho_abd"]] = rng.uniform(0.6, 2.4)
                t[_I[f"{s}_sho_flex"]] = rng.uniform(0.0, 0.8)
        elif behaviour == "bend":
            pitch = rng.uniform(0.5, 1.3)
            t[_I["trunk_pitch"]] = pitch
            t[_I["head_pitch"]] = rng.uniform(0.0, 0.5)
            for s in "lr":
                t[_I[f"{s}_sho_flex"]] = pitch + rng.uniform(-0.2, 0.3)  # arms hang toward the floor
                t[_I[f"{s}_hip_flex"]] = rng.uniform(0.0, 0.3)
                t[_I[f"{s}_knee"]] = rng.uniform(0.0, 0.3)
        elif behaviour == "crouch":
            t[_I["trunk_pitch"]] = rng.uniform(0.3, 0.7)
            for s in "lr":
                t[_I[f"{s}_hip_flex"]] = rng.uniform(1.6, 2.0)
                t[_I[f"{s}_knee"]] = rng.uniform(1.9, 2.3)
                t[_I[f"{s}_hip_abd"]] = rng.uniform(0.1, 0.4)
                t[_I[f"{s}_sho_flex"]] = rng.uniform(0.3, 1.0)
                t[_I[f"{s}_elbow"]] = rng.uniform(0.3, 1.2)
        elif behaviour == "sit":
            t[_I["trunk_pitch"]] = rng.uniform(-0.1, 0.3)
            for s in "lr":
                t[_I[f"{s}_hip_flex"]] = rng.uniform(1.35, 1.65)
                t[_I[f"{s}_knee"]] = rng.uniform(1.3, 1.7)
                t[_I[f"{s}_hip_abd"]] = rng.uniform(0.05, 0.3)
                t[_I[f"{s}_sho_flex"]] = rng.uniform(0.2, 0.8)
                t[_I[f"{s}_elbow"]] = rng.uniform(0.5, 1.5)
        elif behaviour == "turn":
            slot.params = {"rate": rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.8)}
        slot.behaviour, slot.target = behaviour, t

    def _finish(self, slot: _Slot) -> None:
        if slot.exiting and slot.behaviour == "walk":
            slot.present = False
            slot.absent_left = self.rng.uniform(*self.s.absence_s)
            return
        if self.s.entries_exits and slot.stay_left <= 0 and not slot.exiting:
            slot.exiting = True
            a = self.rng.uniform(-np.pi, np.pi)
            r = self.s.walk_radius_mm + self.s.entry_margin_mm
            self._start_walk(slot, self.center + r * np.array([np.cos(a), np.sin(a)]))
            return
        self._start(slot, self._choose(_NEXT_AFTER_WALK if slot.behaviour == "walk" else _NEXT_AFTER_STILL))

    # ---------------------------------------------------------------- stepping
    def _walk_step(self, slot: _Slot, pos: np.ndarray) -> np.ndarray:
        """Steer toward the goal around the others; returns the gait posture target."""
        dt = self.dt
        to_goal = slot.goal - pos
        dist = np.linalg.norm(to_goal)
        desired = to_goal / max(dist, 1e-6)
        for other in self._others(slot):
            d = pos - other
            n = np.linalg.norm(d)
            if n < 1800.0:
                desired = desired + 1.2 * np.exp(-(n - self.s.min_separation_mm) / 350.0) * d / max(n, 1e-6)
        for obstacle, r in zip(self.obstacles, self.obstacle_r):
            d = pos - obstacle
            n = np.linalg.norm(d)
            if n < r + 1500.0:
                desired = desired + 1.5 * np.exp(-(n - r) / 400.0) * d / max(n, 1e-6)
        heading = np.arctan2(desired[1], desired[0])
        yaw = slot.pose[_YAW]
        turn = (heading - yaw + np.pi) % (2 * np.pi) - np.pi
        yaw = yaw + np.clip(turn, -2.5 * dt, 2.5 * dt)  # turn rate <= 2.5 rad/s: smooth paths
        # Slow down for sharp turns and on arrival.
        want = slot.params["speed"] * max(0.2, np.cos(turn)) * min(1.0, dist / 600.0 + 0.3)
        slot.speed += np.clip(want - slot.speed, -1500.0 * dt, 1200.0 * dt)
        step = slot.speed * dt * np.array([np.cos(yaw), np.sin(yaw)])
        slot.pose[_X] += step[0]
        slot.pose[_Y] += step[1]
        slot.pose[_YAW] = yaw
        stride_mm = 0.83 * slot.body.stature_mm
        slot.phase = (slot.phase + 2 * np.pi * slot.speed / stride_mm * dt) % (2 * np.pi)
        # Goals that someone else now stands on are replaced (no pushing through people).
        if not slot.exiting and self._near_obstacle(slot.goal):
            slot.goal = self._free_point(self.s.walk_radius_mm, self._others(slot))
        if slot.exiting and self._near_obstacle(slot.goal):
            slot.goal = slot.goal + (slot.goal - self.center) * 0.3
        if not slot.exiting and any(
            np.linalg.norm(slot.goal - o) < self.s.min_separation_mm for o in self._others(slot)
        ):
            slot.goal = self._free_point(self.s.walk_radius_mm, self._others(slot))
        if dist < 250.0:
            slot.time_left = 0.0
        return self._gait(slot.phase, min(1.0, slot.speed / 1300.0))

    @staticmethod
    def _gait(phase: float, amount: float) -> np.ndarray:
        t = neutral_pose()
        for s, ph in (("l", phase), ("r", phase + np.pi)):
            t[_I[f"{s}_hip_flex"]] = 0.05 + 0.42 * amount * np.sin(ph)
            # Knee bends in swing (hip moving forward) and a little at heel strike.
            t[_I[f"{s}_knee"]] = 0.1 + amount * (0.95 * max(0.0, np.sin(ph + 1.2)) ** 2 + 0.1)
            # Arms swing against the same-side leg.
            t[_I[f"{s}_sho_flex"]] = -0.35 * amount * np.sin(ph)
            t[_I[f"{s}_elbow"]] = 0.25 + 0.25 * amount * (1 - np.cos(ph)) / 2
        t[_I["trunk_pitch"]] = 0.06 * amount
        return t

    def step(self) -> None:
        dt = self.dt
        for slot in self.slots:
            if not slot.present:
                slot.absent_left -= dt
                if slot.absent_left <= 0:
                    self._enter(slot)
                continue
            slot.stay_left -= dt
            slot.clock += dt
            slot.time_left -= dt
            pos = slot.pose[[_X, _Y]]
            if slot.behaviour == "walk":
                target, tau = self._walk_step(slot, pos), 0.06
            else:
                slot.speed = 0.0
                target, tau = slot.target.copy(), 0.35
                if slot.behaviour == "wave":
                    p = slot.params
                    for s in p["sides"]:
                        target[_I[f"{s}_elbow"]] = 1.2 + p["amp"] * np.sin(2 * np.pi * p["freq"] * slot.clock)
                elif slot.behaviour == "turn":
                    slot.pose[_YAW] += slot.params["rate"] * dt
                    target = self._gait(2 * np.pi * 1.2 * slot.clock, 0.25)
                    tau = 0.1
                elif slot.behaviour == "stand":
                    target[_I["trunk_roll"]] = 0.03 * np.sin(1.3 * slot.clock)
            a = 1.0 - np.exp(-dt / tau)
            # Joint angular speed is limited (5 rad/s): behaviour switches never snap a limb.
            slot.pose[3:] += np.clip(a * (target[3:] - slot.pose[3:]), -_MAX_RATE * dt, _MAX_RATE * dt)
            if slot.time_left <= 0:
                self._finish(slot)
        self._separate()

    def _enter(self, slot: _Slot) -> None:
        """A new person appears outside the disc, at a point clear of the others, and walks in."""
        others = self._others(slot)
        r = self.s.walk_radius_mm + self.s.entry_margin_mm
        for _ in range(20):
            a = self.rng.uniform(-np.pi, np.pi)
            pos = self.center + r * np.array([np.cos(a), np.sin(a)])
            if all(np.linalg.norm(pos - o) > 1.5 * self.s.min_separation_mm for o in others):
                break
        else:
            slot.absent_left = 0.5  # try again shortly
            return
        yaw = np.arctan2(*(self.center - pos)[::-1])
        new = self._new_slot(pos, yaw, entering=True)
        self.slots[self.slots.index(slot)] = new

    def _separate(self) -> None:
        """Hard constraint: push overlapping present people apart (no interpenetration)."""
        present = [s for s in self.slots if s.present]
        for _ in range(3):
            moved = False
            for i in range(len(present)):
                for k in range(i + 1, len(present)):
                    a, b = present[i].pose, present[k].pose
                    d = a[[_X, _Y]] - b[[_X, _Y]]
                    n = np.linalg.norm(d)
                    if n < self.s.min_separation_mm:
                        u = d / n if n > 1e-6 else np.array([1.0, 0.0])
                        push = 0.5 * (self.s.min_separation_mm - n) * u
                        a[[_X, _Y]] += push
                        b[[_X, _Y]] -= push
                        moved = True
            if not moved:
                break
        for s in present:  # obstacles are immovable
            for obstacle, r in zip(self.obstacles, self.obstacle_r):
                d = s.pose[[_X, _Y]] - obstacle
                n = np.linalg.norm(d)
                if n < r:
                    u = d / n if n > 1e-6 else np.array([1.0, 0.0])
                    s.pose[[_X, _Y]] = obstacle + r * u

    def record(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids (P,), present (P,), poses (P,POSE_DIM)) of the current state."""
        ids = np.array([s.person_id for s in self.slots], dtype=np.int64)
        present = np.array([s.present for s in self.slots], dtype=bool)
        poses = np.stack([s.pose for s in self.slots]) if self.slots else np.zeros((0, POSE_DIM))
        return ids, present, poses


@dataclass(frozen=True)
class _Chunk:
    ids: np.ndarray  # (S,P)
    present: np.ndarray  # (S,P)
    poses: np.ndarray  # (S,P,POSE_DIM)


class MotionModel:
    """Deterministic, randomly accessible crowd motion.

    Args:
        settings: simulation parameters.
        seed: random seed (same seed, same motion at every frame rate).
        chunk_steps: simulation steps per cached chunk. A live source simulates a chunk in one go
            when playback reaches it: 500 steps (10 s at 50 Hz) stalled the frame that crossed it
            by ~170 ms on one core, 50 steps by ~40 ms (the motion is identical either way).
        max_cached_chunks: chunks kept in memory (older ones are re-simulated on demand).
    """

    def __init__(
        self, settings: MotionSettings, seed: int, chunk_steps: int = 50, max_cached_chunks: int = 160
    ) -> None:
        self.settings = settings
        self.seed = int(seed)
        self.chunk_steps = int(chunk_steps)
        self.max_cached_chunks = int(max_cached_chunks)
        sim = _Simulator(settings, self.seed)
        self._bodies: dict[int, Body] = dict(sim.bodies)
        sim.bodies.clear()  # snapshots hold only new bodies: memory stays flat over long runs
        self._checkpoints: list[_Simulator] = [sim]  # state at the start of chunk k
        self._chunks: OrderedDict[int, _Chunk] = OrderedDict()

    @property
    def num_slots(self) -> int:
        return self.settings.num_people

    def body(self, person_id: int) -> Body:
        """The body of a person id that has appeared in the simulated time so far."""
        return self._bodies[person_id]

    def _simulate_chunk(self, k: int) -> _Chunk:
        sim = copy.deepcopy(self._checkpoints[k])
        ids, present, poses = [], [], []
        for _ in range(self.chunk_steps):
            i, p, q = sim.record()
            ids.append(i), present.append(p), poses.append(q)
            sim.step()
        self._bodies.update(sim.bodies)
        if k + 1 == len(self._checkpoints):
            sim.bodies.clear()
            self._checkpoints.append(sim)  # sim is a private copy: it becomes chunk k+1's snapshot
        return _Chunk(np.stack(ids), np.stack(present), np.stack(poses))

    def _chunk(self, k: int) -> _Chunk:
        if k in self._chunks:
            self._chunks.move_to_end(k)
            return self._chunks[k]
        while len(self._checkpoints) <= k:  # simulate forward to reach chunk k's start
            self._cache(len(self._checkpoints) - 1, self._simulate_chunk(len(self._checkpoints) - 1))
        chunk = self._simulate_chunk(k)
        self._cache(k, chunk)
        return chunk

    def _cache(self, k: int, chunk: _Chunk) -> None:
        self._chunks[k] = chunk
        self._chunks.move_to_end(k)
        while len(self._chunks) > self.max_cached_chunks:
            self._chunks.popitem(last=False)

    @property
    def simulated_s(self) -> float:
        """Media time up to which the motion is simulated (readable without simulating)."""
        return (len(self._checkpoints) - 1) * self.chunk_steps / self.settings.sim_hz

    def advance(self, t_s: float, max_new_chunks: int) -> bool:
        """Simulate at most ``max_new_chunks`` chunks towards time ``t_s``; True when the state at
        ``t_s`` can then be read without simulating (the motion is sequential, so a far-away time
        is reached over several calls, each of bounded cost whatever ``t_s`` is)."""
        if t_s < 0:
            raise ValueError(f"MotionModel.advance: time must be >= 0, got {t_s}")
        need = (int(np.floor(t_s * self.settings.sim_hz + 1e-9)) + 1) // self.chunk_steps  # last chunk read
        for _ in range(int(max_new_chunks)):
            if len(self._checkpoints) > need:
                break
            k = len(self._checkpoints) - 1
            self._cache(k, self._simulate_chunk(k))
        return len(self._checkpoints) > need

    def _step_record(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self._chunk(step // self.chunk_steps)
        i = step % self.chunk_steps
        return c.ids[i], c.present[i], c.poses[i]

    def state_at(self, t_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Interpolated state at time ``t_s`` >= 0.

        Returns:
            ids (P,) int64, present (P,) bool, poses (P,POSE_DIM) (angles within joint limits).
        """
        if t_s < 0:
            raise ValueError(f"MotionModel.state_at: time must be >= 0, got {t_s}")
        x = t_s * self.settings.sim_hz
        i0 = int(np.floor(x + 1e-9))
        a = x - i0
        ids0, pres0, pose0 = self._step_record(i0)
        if a < 1e-9:
            return ids0.copy(), pres0.copy(), clamp_pose(pose0)
        ids1, pres1, pose1 = self._step_record(i0 + 1)
        same = (ids0 == ids1) & (pres0 == pres1)
        d = pose1 - pose0
        d[:, _YAW] = (d[:, _YAW] + np.pi) % (2 * np.pi) - np.pi
        pose = np.where(same[:, None], pose0 + a * d, np.where(a < 0.5, pose0, pose1))
        ids = np.where(a < 0.5, ids0, ids1)
        present = np.where(a < 0.5, pres0, pres1)
        return ids, present, clamp_pose(pose)

    def joints_at(self, t_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ids (P,), present (P,), joints (P,15,3) world mm (NaN for absent slots)."""
        ids, present, poses = self.state_at(t_s)
        joints = np.full((len(ids), NUM_JOINTS, 3), np.nan)
        for p in np.flatnonzero(present):
            joints[p] = forward_kinematics(self._bodies[int(ids[p])], poses[p])
        return ids, present, joints


__all__ = ["BEHAVIOURS", "MotionModel", "MotionSettings", "POSE_DIM"]
