"""OpenCV renderer of the synthetic world: a textured room and z-ordered, shaded people.

Per camera, the background (textured floor, panelled cylindrical wall, ceiling, light falloff)
is ray-cast once through the camera's distortion model and cached. Per frame each person is a
set of primitives (limb capsules, torso, head and hair spheres, hands, shoes, a floor shadow),
projected with the camera's distortion and drawn far-to-near (painter's algorithm, per
primitive), so people occlude each other and themselves correctly at primitive granularity.
The same primitives drawn flat into a label image (person slot + 1, 0 = background) give the
occlusion ground truth. Light changes slowly over time, each camera has its own exposure, and
sensor noise is added from a pre-computed noise pool.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from calib.camera import Camera, CameraRig
from calib.projection import distort_normalized, pixel_rays_w, undistort_points
from capture.synthetic import body as B

# Primitive kinds.
_CAPSULE, _SPHERE, _POLY, _FACE = 0, 1, 2, 3
# Label value of props (furniture) in the label image: slot PROP_SLOT + 1 = 255.
PROP_SLOT = 254
# Extra render points per person appended after the 15 joints.
_HEAD_C, _HAIR_C, _L_HAND, _R_HAND, _L_TOE, _R_TOE = range(15, 21)
_NUM_POINTS = 21
_SHADOW_SIDES = 10


@dataclass(frozen=True)
class RenderOptions:
    """Rendering switches (defaults give the realistic look; tests may switch effects off).

    Attributes:
        antialias: anti-aliased edges (cv2.LINE_AA).
        shading: shaded limbs/heads (several tones per primitive) instead of flat colours.
        textured_background: textured floor and walls (else flat grey).
        shadows: dark floor blobs under people.
        lighting_variation: amplitude of the slow global light changes (0 = constant light).
        exposure_jitter: spread of the per-camera exposure gains.
        sensor_noise_std: std of the additive pixel noise in grey levels (0 = none).
        near_mm: primitives closer to a camera than this are not drawn.
    """

    antialias: bool = True
    shading: bool = True
    textured_background: bool = True
    shadows: bool = True
    lighting_variation: float = 0.15
    exposure_jitter: float = 0.08
    sensor_noise_std: float = 2.0
    near_mm: float = 150.0


@dataclass(frozen=True)
class Appearance:
    """Colours (BGR uint8 triples) of one person's clothing and skin, and the cut of the clothes.

    Attributes:
        shirt, trousers, skin, hair, shoes: colours.
        short_sleeves: forearms are bare (skin).
        shorts: shins are bare (skin).
    """

    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shoes: tuple[int, int, int]
    short_sleeves: bool = False
    shorts: bool = False

    def limb_field(self, edge: tuple[int, int]) -> str:
        """Name of the colour field drawn on a limb of :data:`LIMB_COLOUR_FIELD`."""
        field = LIMB_COLOUR_FIELD[edge]
        if self.short_sleeves and edge in ((B.L_ELB, B.L_WRI), (B.R_ELB, B.R_WRI)):
            return "skin"
        if self.shorts and edge in ((B.L_KNE, B.L_ANK), (B.R_KNE, B.R_ANK)):
            return "skin"
        return field


def _bgr(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(round(b * 255)), int(round(g * 255)), int(round(r * 255))


def appearance_for(person_id: int, seed: int) -> Appearance:
    """Deterministic appearance of a person id: shirt hues follow the golden ratio over ids, so
    people present together wear clearly different colours; trousers take the opposite hue."""
    rng = np.random.default_rng([seed, person_id, 0xC010])
    hue = (0.61803398875 * person_id + 0.137 * (seed % 7)) % 1.0
    skin_tone = rng.uniform(0.25, 0.95)
    return Appearance(
        shirt=_bgr(hue, rng.uniform(0.65, 0.9), rng.uniform(0.65, 0.95)),
        trousers=_bgr(hue + 0.5 + rng.uniform(-0.06, 0.06), rng.uniform(0.6, 0.85), rng.uniform(0.4, 0.65)),
        skin=_bgr(0.07, 0.35 + 0.2 * (1 - skin_tone), 0.35 + 0.55 * skin_tone),
        hair=_bgr(0.08, rng.uniform(0.3, 0.7), rng.uniform(0.08, 0.35)),
        shoes=_bgr(0.0, 0.0, rng.uniform(0.08, 0.25)),
        short_sleeves=bool(rng.random() < 0.35),
        shorts=bool(rng.random() < 0.2),
    )


@dataclass(frozen=True)
class Prop:
    """A box standing on the floor (furniture that occludes people and that people walk around).

    Attributes:
        center_mm: (x, y) of the box centre on the floor.
        size_mm: (length, width, height).
        yaw: rotation about z (rad).
        colour: BGR base colour.
    """

    center_mm: tuple[float, float]
    size_mm: tuple[float, float, float]
    yaw: float
    colour: tuple[int, int, int]

    @property
    def footprint_radius_mm(self) -> float:
        """Half the diagonal of the footprint."""
        return float(np.hypot(self.size_mm[0], self.size_mm[1]) / 2)

    def corners(self) -> np.ndarray:
        """(8,3) corners: bottom 0-3 then top 4-7, counter-clockwise seen from above."""
        lx, ly, h = self.size_mm[0] / 2, self.size_mm[1] / 2, self.size_mm[2]
        c, s_ = np.cos(self.yaw), np.sin(self.yaw)
        local = np.array([[-lx, -ly], [lx, -ly], [lx, ly], [-lx, ly]])
        xy = local @ np.array([[c, s_], [-s_, c]]) + np.asarray(self.center_mm)
        return np.concatenate([np.c_[xy, np.zeros(4)], np.c_[xy, np.full(4, h)]])


# Faces of a box (corner indices, outward normal in the box frame before yaw) and their shade.
_BOX_FACES = (
    ((4, 5, 6, 7), (0.0, 0.0, 1.0), 1.12),
    ((0, 1, 5, 4), (0.0, -1.0, 0.0), 0.85),
    ((1, 2, 6, 5), (1.0, 0.0, 0.0), 0.72),
    ((2, 3, 7, 6), (0.0, 1.0, 0.0), 0.8),
    ((3, 0, 4, 7), (-1.0, 0.0, 0.0), 0.66),
)


def sample_props(
    count: int, seed: int, center_mm, walk_radius_mm: float, avoid_mm: list, avoid_radius_mm: float
) -> tuple[Prop, ...]:
    """``count`` pieces of furniture (tables, cabinets, crates) around the edge of the walk area,
    clear of each other and of the points ``avoid_mm`` (cameras)."""
    rng = np.random.default_rng([seed, 0x9409])
    kinds = (
        ((1200.0, 700.0, 750.0), (60, 95, 140)),
        ((500.0, 450.0, 1100.0), (110, 110, 115)),
        ((600.0, 600.0, 500.0), (70, 120, 165)),
        ((900.0, 500.0, 450.0), (90, 80, 75)),
    )
    props: list[Prop] = []
    for _ in range(count * 50):
        if len(props) == count:
            break
        size, colour = kinds[int(rng.integers(len(kinds)))]
        r = walk_radius_mm * rng.uniform(0.55, 1.05)
        a = rng.uniform(-np.pi, np.pi)
        xy = np.asarray(center_mm[:2], float) + r * np.array([np.cos(a), np.sin(a)])
        jitter = tuple(int(np.clip(c * rng.uniform(0.8, 1.2), 0, 255)) for c in colour)
        prop = Prop((float(xy[0]), float(xy[1])), size, float(rng.uniform(-np.pi, np.pi)), jitter)
        if any(np.linalg.norm(xy - np.asarray(p[:2])) < avoid_radius_mm + prop.footprint_radius_mm for p in avoid_mm):
            continue
        if any(
            np.linalg.norm(xy - np.asarray(q.center_mm)) < q.footprint_radius_mm + prop.footprint_radius_mm + 800.0
            for q in props
        ):
            continue
        props.append(prop)
    return tuple(props)


def render_points(joints_mm: np.ndarray, body: B.Body) -> np.ndarray:
    """(21,3) points to draw one person: the 15 joints plus head centre, hair centre, hands, toes."""
    j = joints_mm
    up = np.array([0.0, 0.0, 1.0])
    face = j[B.NOSE] - j[B.NECK]
    fwd = face - (face @ up) * up
    fwd = fwd / max(np.linalg.norm(fwd), 1e-6)
    hips = j[B.L_HIP] - j[B.R_HIP]
    body_fwd = np.array([-hips[1], hips[0], 0.0])
    body_fwd = body_fwd / max(np.linalg.norm(body_fwd), 1e-6)
    r = body.head_radius_mm
    head_c = j[B.NOSE] - 0.75 * r * fwd + 0.25 * r * up
    pts = np.empty((_NUM_POINTS, 3))
    pts[:15] = j
    pts[_HEAD_C] = head_c
    pts[_HAIR_C] = head_c - 0.2 * r * fwd + 0.2 * r * up
    for hand, wri, elb in ((_L_HAND, B.L_WRI, B.L_ELB), (_R_HAND, B.R_WRI, B.R_ELB)):
        d = j[wri] - j[elb]
        pts[hand] = j[wri] + 0.09 * body.stature_mm * d / max(np.linalg.norm(d), 1e-6)
    for toe, ank in ((_L_TOE, B.L_ANK), (_R_TOE, B.R_ANK)):
        pts[toe] = j[ank] + 0.12 * body.stature_mm * body_fwd - np.array([0.0, 0.0, 0.6 * body.ankle_height_mm])
    return pts


def _person_primitives(body: B.Body, look: Appearance) -> list[tuple]:
    """(kind, point indices, radius_mm, colour) for one person (radii scale with stature)."""
    h = body.stature_mm
    sh, tr, sk = look.shirt, look.trousers, look.skin
    prims = [
        (_POLY, (B.L_SHO, B.R_SHO, B.R_HIP, B.L_HIP), 0.0, sh),
        (_CAPSULE, (B.MID_HIP, B.NECK), 0.075 * h, sh),
        (_CAPSULE, (B.L_SHO, B.R_SHO), 0.035 * h, sh),
        (_CAPSULE, (B.L_HIP, B.R_HIP), 0.05 * h, tr),
        (_CAPSULE, (B.NECK, _HEAD_C), 0.028 * h, sk),
        (_SPHERE, (_HAIR_C,), body.head_radius_mm * 1.02, look.hair),
        (_SPHERE, (_HEAD_C,), body.head_radius_mm, sk),
    ]
    for sho, elb, wri, hand in ((B.L_SHO, B.L_ELB, B.L_WRI, _L_HAND), (B.R_SHO, B.R_ELB, B.R_WRI, _R_HAND)):
        prims += [
            (_CAPSULE, (sho, elb), 0.03 * h, sh),
            (_CAPSULE, (elb, wri), (0.021 if look.short_sleeves else 0.024) * h, sk if look.short_sleeves else sh),
            (_CAPSULE, (wri, hand), 0.02 * h, sk),
        ]
    for hip, kne, ank, toe in ((B.L_HIP, B.L_KNE, B.L_ANK, _L_TOE), (B.R_HIP, B.R_KNE, B.R_ANK, _R_TOE)):
        prims += [
            (_CAPSULE, (hip, kne), 0.047 * h, tr),
            (_CAPSULE, (kne, ank), (0.03 if look.shorts else 0.034) * h, sk if look.shorts else tr),
            (_CAPSULE, (ank, toe), 0.026 * h, look.shoes),
        ]
    return prims


# Which appearance field colours each limb with long sleeves and trousers: edge -> field name
# (see Appearance.limb_field for bare forearms / shins).
LIMB_COLOUR_FIELD = {
    (B.L_SHO, B.L_ELB): "shirt",
    (B.L_ELB, B.L_WRI): "shirt",
    (B.R_SHO, B.R_ELB): "shirt",
    (B.R_ELB, B.R_WRI): "shirt",
    (B.L_HIP, B.L_KNE): "trousers",
    (B.L_KNE, B.L_ANK): "trousers",
    (B.R_HIP, B.R_KNE): "trousers",
    (B.R_KNE, B.R_ANK): "trousers",
    (B.MID_HIP, B.NECK): "shirt",
}


class _CameraView:
    """Per-camera cached data: background image, projection limits, exposure."""

    def __init__(self, cam: Camera, background: np.ndarray, exposure: float) -> None:
        self.cam = cam
        self.background = background
        self.exposure = exposure
        corners = np.array([[0, 0], [cam.width - 1, 0], [0, cam.height - 1], [cam.width - 1, cam.height - 1]], float)
        r_corner = np.linalg.norm(undistort_points(corners, cam), axis=-1).max()
        # Beyond this normalised radius the distortion polynomial may fold back into the image.
        self.r_max = 1.4 * r_corner

    def project(self, points_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,3) -> uv (N,2) px, depth (N,) mm; far off-image directions are clamped radially."""
        cam = self.cam
        xc = points_w @ cam.R.T + cam.t_mm
        z = xc[:, 2]
        xy = xc[:, :2] / np.where(np.abs(z) < 1e-6, 1e-6, z)[:, None]
        r = np.linalg.norm(xy, axis=-1)
        scale = np.where(r > self.r_max, self.r_max / np.maximum(r, 1e-12), 1.0)
        xyd = distort_normalized(xy * scale[:, None], cam.dist)
        K = cam.K
        uv = np.stack([K[0, 0] * xyd[:, 0] + K[0, 1] * xyd[:, 1] + K[0, 2], K[1, 1] * xyd[:, 1] + K[1, 2]], -1)
        # Points pushed to the clamp radius are off-image; move them further out along the ray
        # so that limbs crossing the frame edge keep their direction.
        off = scale < 1.0
        if np.any(off):
            c = K[:2, 2]
            uv[off] = c + (uv[off] - c) / scale[off, None]
        return uv, z


def _floor_texture(rng: np.random.Generator, size_px: int, tile_px: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size_px, 0:size_px]
    checker = ((xx // tile_px + yy // tile_px) % 2).astype(np.float32)
    base = np.array([120, 135, 150], np.float32)  # warm grey (BGR)
    tex = base[None, None] * (0.85 + 0.15 * checker[..., None])
    tex += rng.normal(0, 6, size=(size_px, size_px, 1)).astype(np.float32)
    grout = ((xx % tile_px) < 2) | ((yy % tile_px) < 2)
    tex[grout] *= 0.7
    return np.clip(tex, 0, 255).astype(np.uint8)


def _wall_texture(rng: np.random.Generator, width_px: int, height_px: int) -> np.ndarray:
    xx = np.arange(width_px)[None, :]
    yy = np.arange(height_px)[:, None]
    panel = (xx // 60) % 3
    tone = np.array([[95, 100, 110], [105, 108, 112], [88, 96, 104]], np.float32)[panel]  # (1,W,3)
    tex = np.broadcast_to(tone, (height_px, width_px, 3)).astype(np.float32).copy()
    tex *= (0.75 + 0.25 * yy / height_px)[..., None]
    tex[:, (xx[0] % 60) < 2] *= 0.6
    tex += rng.normal(0, 4, size=(height_px, width_px, 1)).astype(np.float32)
    return np.clip(tex, 0, 255).astype(np.uint8)


def _pixel_rays(cam: Camera, grid_step_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World ray directions of every pixel as three (H,W) float32 arrays (x, y, z).

    Undistortion is iterative, so it runs on a coarse pixel grid; the direction field is smooth
    and is interpolated to full resolution (grid-aligned) and renormalised.
    """
    W, H = cam.width, cam.height
    gx = np.arange(0, W - 1 + grid_step_px, grid_step_px, dtype=np.float64)
    gy = np.arange(0, H - 1 + grid_step_px, grid_step_px, dtype=np.float64)
    coarse = pixel_rays_w(np.stack(np.meshgrid(gx, gy), -1), cam).astype(np.float32)  # (h,w,3)
    map_x = np.broadcast_to((np.arange(W, dtype=np.float32) / grid_step_px)[None, :], (H, W))
    map_y = np.broadcast_to((np.arange(H, dtype=np.float32) / grid_step_px)[:, None], (H, W))
    d = cv2.split(cv2.remap(coarse, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), cv2.INTER_LINEAR))
    inv = 1.0 / np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    return d[0] * inv, d[1] * inv, d[2] * inv


@dataclass(frozen=True)
class _RoomTextures:
    """Floor and wall textures in one atlas (floor on top, wall below)."""

    atlas: np.ndarray
    mm_per_px: float
    floor_px: int
    wall_w: int
    wall_h: int

    @classmethod
    def build(cls, room_radius_mm: float, room_height_mm: float, seed: int) -> "_RoomTextures":
        rng = np.random.default_rng([seed, 0xBACC])
        mm_per_px = 12.0
        floor_px = int(2 * room_radius_mm / mm_per_px) + 1
        wall_w = int(2 * np.pi * room_radius_mm / 25.0)
        wall_h = int(room_height_mm / 25.0)
        atlas = np.zeros((floor_px + wall_h, max(floor_px, wall_w), 3), np.uint8)
        atlas[:floor_px, :floor_px] = _floor_texture(rng, floor_px, int(600 / mm_per_px))
        atlas[floor_px:, :wall_w] = _wall_texture(rng, wall_w, wall_h)
        return cls(atlas, mm_per_px, floor_px, wall_w, wall_h)


def render_background(
    cam: Camera,
    room_center_mm: np.ndarray,
    room_radius_mm: float,
    room_height_mm: float,
    textures: "_RoomTextures | None",
    grid_step_px: int = 8,
) -> np.ndarray:
    """(H,W,3) BGR image of the empty room seen by ``cam`` (every pixel ray-cast; flat grey
    without ``textures``)."""
    W, H = cam.width, cam.height
    if textures is None:
        return np.full((H, W, 3), 110, np.uint8)
    mm_per_px, floor_px, wall_w, wall_h = textures.mm_per_px, textures.floor_px, textures.wall_w, textures.wall_h
    dx, dy, dz = _pixel_rays(cam, grid_step_px)
    c = cam.center_mm.astype(np.float32)
    center = np.asarray(room_center_mm, np.float32)
    rel = c[:2] - center[:2]
    # Wall: |rel + t d_xy| = R (camera inside the cylinder -> positive root).
    a = np.maximum(dx * dx + dy * dy, 1e-12)
    bq = 2 * (dx * rel[0] + dy * rel[1])
    cq = np.float32((rel**2).sum() - room_radius_mm**2)
    t_wall = (-bq + np.sqrt(np.maximum(bq * bq - 4 * a * cq, 0))) / (2 * a)
    t_floor = np.where(dz < -1e-9, -c[2] / np.minimum(dz, -1e-9), np.inf).astype(np.float32)
    hit_floor = t_floor < t_wall
    t_f = np.where(hit_floor, t_floor, 0.0)
    fx_mm = c[0] + t_f * dx
    fy_mm = c[1] + t_f * dy
    z_wall = c[2] + t_wall * dz
    az = np.arctan2(rel[1] + t_wall * dy, rel[0] + t_wall * dx)
    # Floor texture coords, then wall coords placed below the floor in one atlas.
    map_x = np.where(
        hit_floor, (fx_mm - center[0] + room_radius_mm) / mm_per_px, (az + np.pi) / (2 * np.pi) * (wall_w - 1)
    ).astype(np.float32)
    map_y = np.where(
        hit_floor,
        (fy_mm - center[1] + room_radius_mm) / mm_per_px,
        floor_px + (1.0 - np.clip(z_wall / room_height_mm, 0, 1)) * (wall_h - 1),
    ).astype(np.float32)
    # Light: bright in the middle of the room, darker toward the walls; dark ceiling.
    r_floor = np.hypot(fx_mm - center[0], fy_mm - center[1]) / room_radius_mm
    light = np.where(
        hit_floor, 1.1 - 0.45 * np.clip(r_floor, 0, 1) ** 2, 0.8 + 0.2 * np.clip(z_wall / room_height_mm, 0, 1)
    )
    light = np.where((~hit_floor) & (z_wall > room_height_mm), 0.35, light).astype(np.float32)
    img = cv2.remap(textures.atlas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.multiply(img, cv2.merge([light, light, light]), dtype=cv2.CV_8U)


class Renderer:
    """Draws people into each camera of a rig.

    Args:
        rig: the cameras (images come out at each camera's calibrated resolution).
        room_center_mm: (3,) centre of the room (floor at z = 0).
        options: render switches.
        seed: seed of textures, exposures, light changes and noise.
        props: static furniture drawn with the people.
    """

    def __init__(
        self, rig: CameraRig, room_center_mm, options: RenderOptions, seed: int, props: tuple[Prop, ...] = ()
    ) -> None:
        self.rig = rig
        self.props = tuple(props)
        self.options = options
        self.seed = int(seed)
        center = np.array([room_center_mm[0], room_center_mm[1], 0.0], dtype=np.float64)
        horiz = np.linalg.norm(rig.centers_mm[:, :2] - center[:2], axis=-1)
        radius = float(max(horiz.max() + 1500.0, 5000.0))
        height = float(max(rig.centers_mm[:, 2].max() + 800.0, 3000.0))
        rng = np.random.default_rng([self.seed, 0xE4])
        self.views = []
        textures = _RoomTextures.build(radius, height, self.seed) if options.textured_background else None
        for cam in rig:
            bg = render_background(cam, center, radius, height, textures)
            exposure = 1.0 + options.exposure_jitter * rng.uniform(-1, 1)
            self.views.append(_CameraView(cam, bg, exposure))
        self._light_phase = rng.uniform(0, 2 * np.pi, size=4)
        self._tint_cache: list[dict] = [{} for _ in rig]
        self._noise = None
        if options.sensor_noise_std > 0:
            max_w = max(c.width for c in rig) + 64
            max_h = max(c.height for c in rig) + 64
            n = rng.normal(128.0, options.sensor_noise_std, size=(max_h, max_w, 3))
            self._noise = np.clip(n, 0, 255).astype(np.uint8)
        self._line_type = cv2.LINE_AA if options.antialias else cv2.LINE_8

    def _tinted_background(self, view: int, tint: np.ndarray) -> np.ndarray:
        """The view's background times the per-channel tint (cached: the tint drifts slowly)."""
        key = tuple(tint.tolist())
        cache = self._tint_cache[view]
        if key not in cache:
            if len(cache) >= 2:
                cache.pop(next(iter(cache)))
            cache[key] = cv2.multiply(self.views[view].background, (*key, 0.0))
        return cache[key]

    def _light(self, view: int, t_s: float) -> tuple[float, np.ndarray]:
        """(global gain g, per-channel tint x exposure in steps of 1/256) of a view at ``t_s``."""
        lv = self.options.lighting_variation
        ph = self._light_phase
        g = 1.0 + lv * (0.6 * np.sin(2 * np.pi * t_s / 23.0 + ph[0]) + 0.4 * np.sin(2 * np.pi * t_s / 7.3 + ph[1]))
        tint = 1.0 + 0.3 * lv * np.array(
            [np.sin(2 * np.pi * t_s / 31.0 + ph[2]), 0.0, np.sin(2 * np.pi * t_s / 17.0 + ph[3])]
        )
        return float(g), np.round(tint * self.views[view].exposure * 256.0) / 256.0

    def light_gain(self, view: int, t_s: float) -> np.ndarray:
        """(3,) BGR gain of camera ``view`` at time ``t_s`` (global light x tint x exposure)."""
        g, tint = self._light(view, t_s)
        return g * tint

    def scene(self, people: list[tuple[int, np.ndarray, B.Body, Appearance]]) -> "_Scene":
        """Build the frame's primitive table once (shared by all views)."""
        return _Scene.build(people, self.props)

    def _ordered(self, view: _CameraView, scene: "_Scene") -> tuple:
        """Project the scene into one view; returns primitive order (far to near) and pixel data."""
        uv, z = view.project(scene.points)
        zi = np.where(scene.idx >= 0, z[np.maximum(scene.idx, 0)], np.nan)  # (M,4)
        depth = np.nanmean(zi, axis=1)
        ok = np.nanmin(zi, axis=1) >= self.options.near_mm
        faces = np.flatnonzero(scene.kind == _FACE)
        if len(faces):  # back-face culling of furniture faces
            centre = scene.points[scene.idx[faces]].mean(axis=1)  # (F,3)
            ok[faces] &= ((view.cam.center_mm - centre) * scene.normal[faces]).sum(-1) > 0
        order = np.flatnonzero(ok)
        order = order[np.argsort(-depth[order], kind="stable")]
        r_px = scene.radius * view.cam.K[0, 0] / np.where(ok, depth, 1.0)
        uv_i = np.rint(np.clip(uv, -1e5, 1e5)).astype(np.int64)
        return order, uv_i, r_px

    def _shadow_polys(self, view: _CameraView, scene: "_Scene") -> list[np.ndarray]:
        polys = []
        if not len(scene.roots):
            return polys
        ang = np.linspace(0, 2 * np.pi, _SHADOW_SIDES, endpoint=False)
        r = 0.17 * scene.statures[:, None]
        ring = np.stack(
            [
                scene.roots[:, None, 0] + r * np.cos(ang),
                scene.roots[:, None, 1] + 0.8 * r * np.sin(ang),
                np.zeros_like(r * ang),
            ],
            -1,
        )  # (P,S,3)
        uv, z = view.project(ring.reshape(-1, 3))
        uv, z = uv.reshape(-1, _SHADOW_SIDES, 2), z.reshape(-1, _SHADOW_SIDES)
        for k in range(len(uv)):
            if z[k].min() > self.options.near_mm:
                polys.append(np.rint(uv[k]).astype(np.int32))
        return polys

    def render(
        self,
        view: int,
        scene: "_Scene",
        t_s: float,
        noise_seed: int,
        with_label: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Render one camera.

        Args:
            view: camera index.
            scene: the frame's primitives (:meth:`scene`).
            t_s: time (drives the light).
            noise_seed: seed of this image's sensor noise.
            with_label: also return the label image.
        Returns:
            (image (H,W,3) BGR uint8, label (H,W) uint8 slot+1 or None).
        """
        v = self.views[view]
        opts = self.options
        lt = self._line_type
        order, uv_i, r_px = self._ordered(v, scene)
        g, tint = self._light(view, t_s)
        gain = g * tint
        # One pass: tinted background (cached) times the global gain, into a fresh image.
        img = cv2.convertScaleAbs(self._tinted_background(view, tint), alpha=g)
        if opts.shadows:
            shade = tuple(int(c) for c in np.clip(np.array([55.0, 60.0, 66.0]) * gain, 0, 255))
            for poly in self._shadow_polys(v, scene):
                cv2.fillConvexPoly(img, poly, shade, lt)
        col = scene.colour * gain  # (M,3)
        tones = [np.clip(col * f, 0, 255).astype(np.int64).tolist() for f in (0.62, 1.0, 1.18, 0.8)]
        dark, base, light, flat = tones
        kinds = scene.kind.tolist()
        r_list = r_px.tolist()
        for m in order.tolist():
            kind, r = kinds[m], r_list[m]
            if kind == _POLY:
                cv2.fillConvexPoly(img, uv_i[scene.idx[m]].astype(np.int32), flat[m] if opts.shading else base[m], lt)
                continue
            if kind == _FACE:
                cv2.fillConvexPoly(img, uv_i[scene.idx[m]].astype(np.int32), base[m], lt)
                continue
            i0 = scene.idx[m, 0]
            x0, y0 = uv_i[i0].tolist()
            if kind == _CAPSULE:
                x1, y1 = uv_i[scene.idx[m, 1]].tolist()
                t = max(1, round(2 * r))
                if not opts.shading or t < 4:
                    cv2.line(img, (x0, y0), (x1, y1), base[m], t, lt)
                    continue
                o = round(0.22 * r)  # light from above: the lit band is shifted up
                cv2.line(img, (x0, y0), (x1, y1), dark[m], t, lt)
                # Inner bands: plain lines (their edges lie inside the limb; AA there is not visible).
                cv2.line(img, (x0, y0 - o), (x1, y1 - o), base[m], max(1, round(1.25 * r)), cv2.LINE_8)
                if t >= 8:
                    cv2.line(img, (x0, y0 - 2 * o), (x1, y1 - 2 * o), light[m], max(1, round(0.45 * r)), cv2.LINE_8)
            else:  # sphere
                rr = max(1, round(r))
                if not opts.shading or rr < 3:
                    cv2.circle(img, (x0, y0), rr, base[m], -1, lt)
                    continue
                o = round(0.2 * r)
                cv2.circle(img, (x0, y0), rr, dark[m], -1, lt)
                cv2.circle(img, (x0 - o // 2, y0 - o), max(1, round(0.75 * r)), base[m], -1, lt)
                cv2.circle(img, (x0 - o, y0 - 2 * o), max(1, round(0.3 * r)), light[m], -1, lt)
        if self._noise is not None:
            rng = np.random.default_rng([self.seed, noise_seed, view])
            oy, ox = rng.integers(0, 64, size=2)
            crop = self._noise[oy : oy + v.cam.height, ox : ox + v.cam.width]
            img = cv2.addWeighted(img, 1.0, crop, 1.0, -128.0)
        label = self.label_image(view, scene, (order, uv_i, r_px)) if with_label else None
        return img, label

    def label_image(self, view: int, scene: "_Scene", projected: tuple | None = None) -> np.ndarray:
        """(H,W) uint8 label image: slot + 1 of the nearest primitive, 0 for background."""
        v = self.views[view]
        order, uv_i, r_px = projected if projected is not None else self._ordered(v, scene)
        label = np.zeros((v.cam.height, v.cam.width), np.uint8)
        kinds = scene.kind.tolist()
        values = (scene.slot + 1).tolist()
        r_list = r_px.tolist()
        for m in order.tolist():
            kind, val = kinds[m], values[m]
            if kind == _POLY or kind == _FACE:
                cv2.fillConvexPoly(label, uv_i[scene.idx[m]].astype(np.int32), val, cv2.LINE_8)
                continue
            x0, y0 = uv_i[scene.idx[m, 0]].tolist()
            if kind == _CAPSULE:
                x1, y1 = uv_i[scene.idx[m, 1]].tolist()
                cv2.line(label, (x0, y0), (x1, y1), val, max(1, round(2 * r_list[m])), cv2.LINE_8)
            else:
                cv2.circle(label, (x0, y0), max(1, round(r_list[m])), val, -1, cv2.LINE_8)
        return label


@dataclass(frozen=True)
class _Scene:
    """All primitives of one frame as flat arrays (M primitives; 21 points per person, 8 per prop)."""

    points: np.ndarray  # (N,3) world mm
    kind: np.ndarray  # (M,) int
    idx: np.ndarray  # (M,4) point indices, -1 padded
    radius: np.ndarray  # (M,) mm
    colour: np.ndarray  # (M,3) BGR float
    slot: np.ndarray  # (M,) person slot (PROP_SLOT for furniture)
    normal: np.ndarray  # (M,3) outward normal of furniture faces (0 for people)
    roots: np.ndarray  # (P,3) pelvis points (shadows)
    statures: np.ndarray  # (P,)

    @classmethod
    def build(cls, people: list[tuple[int, np.ndarray, B.Body, Appearance]], props: tuple[Prop, ...] = ()) -> "_Scene":
        pts, kind, idx, radius, colour, slot, normal = [], [], [], [], [], [], []
        for n, (s, joints, body, look) in enumerate(people):
            pts.append(render_points(joints, body))
            for k, ii, r, c in _person_primitives(body, look):
                kind.append(k)
                idx.append([n * _NUM_POINTS + i for i in ii] + [-1] * (4 - len(ii)))
                radius.append(r)
                colour.append(c)
                slot.append(s)
                normal.append((0.0, 0.0, 0.0))
        base = len(people) * _NUM_POINTS
        for prop in props:
            pts.append(prop.corners())
            c, s_ = np.cos(prop.yaw), np.sin(prop.yaw)
            for ii, (nx, ny, nz), shade in _BOX_FACES:
                kind.append(_FACE)
                idx.append([base + i for i in ii])
                radius.append(0.0)
                colour.append(tuple(min(255.0, ch * shade) for ch in prop.colour))
                slot.append(PROP_SLOT)
                normal.append((c * nx - s_ * ny, s_ * nx + c * ny, nz))
            base += 8
        return cls(
            np.concatenate(pts) if pts else np.zeros((0, 3)),
            np.array(kind, np.int64),
            np.array(idx, np.int64).reshape(-1, 4),
            np.array(radius, float),
            np.array(colour, float).reshape(-1, 3),
            np.array(slot, np.int64),
            np.array(normal, float).reshape(-1, 3),
            np.stack([j[B.MID_HIP] for _, j, _, _ in people]) if people else np.zeros((0, 3)),
            np.array([b.stature_mm for _, _, b, _ in people]),
        )
