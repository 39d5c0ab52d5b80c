"""The cardboard robot's program — forward, left, right, stop — over skid-steer kinematics.

The same :class:`Program` drives three backends: an ideal kinematic model (fast, for tests and
sketches), a PyBullet simulation of a real four-wheeled robot (Clearpath's Husky, shipped in
``pybullet_data``; DIRECT mode, camera images from TinyRenderer), and a Raspberry Pi with two
H-bridge motor channels through gpiozero's ``Robot``/``Motor`` (testable with the mock pin factory).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fieldnotes.native import quiet_native_output
from fieldnotes.robot.field import PLANT_RADIUS_M, ROBOT_WIDTH_M, Field
from fieldnotes.robot.row_detector import Camera
from fieldnotes.robot.side_camera import FLOWER_HEIGHT_M, FLOWER_SIZE_M, SideCamera, side_view


@dataclass(frozen=True)
class SkidSteer:
    """Four-wheel skid-steer geometry (metres, m/s); defaults are the Husky's."""

    track_m: float = 0.571  # distance between left and right wheel centres
    wheel_radius_m: float = 0.1651
    max_speed_mps: float = 1.0  # top wheel speed
    length_m: float = 0.99
    width_m: float = ROBOT_WIDTH_M  # outer width across the wheels
    track_factor: float = 1.0  # effective track / geometric track: skid-steer slip when turning
    rolling_factor: float = (
        1.0  # distance the body rolls / nominal rim travel (odometry calibration)
    )


HUSKY = SkidSteer()
HUSKY_SIM = SkidSteer(track_factor=2.5, rolling_factor=1.081)
"""The Husky as PyBullet turns it: wheels slip sideways, so a turn needs ~2.5× the ideal wheel-speed
difference (the "expansion factor" of skid-steer models), and on a straight the body rolls 1.081×
the nominal rim travel (its collision wheels are larger than the URDF's nominal radius); both
measured in ``tests/test_robot_drive.py``. Odometry multiplies wheel travel by ``rolling_factor``."""
CARDBOARD = SkidSteer(
    track_m=0.14,
    wheel_radius_m=0.0325,
    max_speed_mps=0.4,
    length_m=0.22,
    width_m=0.18,
    track_factor=1.0,
    rolling_factor=1.0,
)
"""The cardboard chassis: two 65 mm wheels on yellow "TT" gear motors, 14 cm apart, and a caster
(a differential drive, so χ = 1 to start with); top speed about 0.4 m/s at 6 V. These are a
typical kit's, not measured: calibrate ``rolling_factor`` (drive 2 m, compare) and
``track_factor`` (spin ten turns, compare) on your own robot."""
ROBOTS: dict[str, SkidSteer] = {"husky": HUSKY, "husky-sim": HUSKY_SIM, "cardboard": CARDBOARD}
"""Dead-reckoning parameters by robot: the Husky as built, as PyBullet drives it, and the cardboard
chassis. A robot's odometry must use its own."""


def robot_geometry(name: str) -> SkidSteer:
    """The :class:`SkidSteer` parameters of robot ``name`` (a key of ``ROBOTS``)."""
    if name not in ROBOTS:
        raise ValueError(f"robot {name!r} is not known; expected one of {sorted(ROBOTS)}")
    return ROBOTS[name]


def wheel_speeds(v: float, omega: float, geometry: SkidSteer = HUSKY) -> tuple[float, float]:
    """Left and right wheel speeds (m/s) for a body speed ``v`` (m/s) and turn rate ``omega``
    (rad/s, + = left), scaled down together if either exceeds the top speed."""
    track = geometry.track_m * geometry.track_factor
    left = v - omega * track / 2
    right = v + omega * track / 2
    peak = max(abs(left), abs(right))
    if peak > geometry.max_speed_mps:
        left, right = left * geometry.max_speed_mps / peak, right * geometry.max_speed_mps / peak
    return float(left), float(right)


def body_twist(left: float, right: float, geometry: SkidSteer = HUSKY) -> tuple[float, float]:
    """Body speed (m/s) and turn rate (rad/s) from left and right wheel speeds (m/s)."""
    return (left + right) / 2, (right - left) / (geometry.track_m * geometry.track_factor)


def integrate_pose(
    pose: tuple[float, float, float], v: float, omega: float, dt: float
) -> tuple[float, float, float]:
    """Exact unicycle motion over ``dt`` seconds from ``pose`` = (x m, y m, yaw rad)."""
    x, y, yaw = pose
    if abs(omega) < 1e-9:
        return x + v * dt * math.cos(yaw), y + v * dt * math.sin(yaw), yaw
    r = v / omega
    new_yaw = yaw + omega * dt
    x += r * (math.sin(new_yaw) - math.sin(yaw))
    y -= r * (math.cos(new_yaw) - math.cos(yaw))
    return x, y, wrap_angle(new_yaw)


def wrap_angle(a: float) -> float:
    """Angle wrapped to [-π, π) (radians)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


class Backend(Protocol):
    """What a program needs from a robot: wheels, a clock, and where it thinks it is."""

    geometry: SkidSteer
    time_s: float

    def set_wheels(self, left_mps: float, right_mps: float) -> None: ...
    def advance(self, seconds: float) -> None: ...
    def pose(self) -> tuple[float, float, float]: ...


class KinematicBackend:
    """Ideal skid steer: no slip, the body moves exactly as the wheel speeds say."""

    def __init__(self, geometry: SkidSteer = HUSKY, start: tuple[float, float, float] = (0, 0, 0)):
        self.geometry = geometry
        self._pose = tuple(float(v) for v in start)
        self._wheels = (0.0, 0.0)
        self._angles = (0.0, 0.0)
        self.time_s = 0.0

    def set_wheels(self, left_mps: float, right_mps: float) -> None:
        """Command wheel speeds (m/s)."""
        self._wheels = (float(left_mps), float(right_mps))

    def advance(self, seconds: float) -> None:
        """Move for ``seconds`` at the commanded wheel speeds."""
        v, w = body_twist(*self._wheels, self.geometry)
        self._pose = integrate_pose(self._pose, v, w, seconds)
        r = self.geometry.wheel_radius_m
        self._angles = tuple(
            a + s / r * seconds for a, s in zip(self._angles, self._wheels, strict=True)
        )
        self.time_s += seconds

    def pose(self) -> tuple[float, float, float]:
        """(x m, y m, yaw rad)."""
        return self._pose

    def wheel_angles(self) -> tuple[float, float]:
        """Left and right wheel angles (rad) turned since the start."""
        return self._angles

    def yaw_rate(self) -> float:
        """The body's turn rate (rad/s) at the commanded wheel speeds."""
        return body_twist(*self._wheels, self.geometry)[1]


class PyBulletBackend:
    """A Husky in a PyBullet world (DIRECT mode) with the field's plants and weeds as bodies."""

    def __init__(
        self,
        field: Field | None = None,
        start: tuple[float, float, float] = (0.0, 0.0, 0.0),
        camera: Camera | None = None,
        time_step: float = 1 / 120,
        side_camera: SideCamera | None = None,
        flower_lighting: float = 1.0,
        geometry: SkidSteer = HUSKY_SIM,
        wheel_force: float = 60.0,
        robot_visible: bool = False,
    ):
        with quiet_native_output():
            import pybullet as p
            import pybullet_data

        if not 0 < time_step <= 0.02:
            raise ValueError(f"time_step must be in (0, 0.02] seconds, got {time_step}")
        self.p = p
        self.client = p.connect(p.DIRECT)
        self.geometry = geometry
        self.camera = camera or Camera()
        self.side_camera = side_camera or SideCamera()
        self.time_step = time_step
        self.wheel_force = wheel_force
        self.time_s = 0.0
        cid = self.client
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=cid)
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        p.setTimeStep(time_step, physicsClientId=cid)
        plane = p.loadURDF("plane.urdf", physicsClientId=cid)
        p.changeVisualShape(
            plane, -1, rgbaColor=[0.45, 0.33, 0.22, 1], textureUniqueId=-1, physicsClientId=cid
        )
        x, y, yaw = start
        quat = p.getQuaternionFromEuler([0, 0, yaw])
        with quiet_native_output():
            self.robot = p.loadURDF("husky/husky.urdf", [x, y, 0.15], quat, physicsClientId=cid)
        self.left_joints, self.right_joints = (2, 4), (3, 5)
        if not robot_visible:
            # The mast camera looks ahead and down and never sees the chassis, but TinyRenderer
            # still rasterises the Husky's meshes for every frame: hiding them makes a frame
            # about three times cheaper and leaves the image unchanged (tested).
            for link in range(-1, p.getNumJoints(self.robot, physicsClientId=cid)):
                p.changeVisualShape(self.robot, link, rgbaColor=[0, 0, 0, 0], physicsClientId=cid)
        if field is not None:
            self._plant_bodies(field, flower_lighting)
        for _ in range(int(0.3 / time_step)):  # settle on the ground
            p.stepSimulation(physicsClientId=cid)

    def _plant_bodies(self, field: Field, lighting: float = 1.0) -> None:
        """Plants (a green stem under a flower head) and weeds as visual-only bodies.

        Stems and weeds are boxes grouped into a few bodies with many visual shapes each: hundreds
        of single bodies would cost the physics step several times more, even without collision
        shapes. Each row's flower heads are one textured mesh of flat squares at
        ``FLOWER_HEIGHT_M``, each square showing that plant's close-up from the flower generator
        (:func:`~fieldnotes.robot.plants.plant_image`, its background the plant's foliage, not
        soil: no camera should see ground at a flower head's height), so a camera looking down at the row sees
        fertile or male-sterile anthers as the plant has them.
        """
        p, cid = self.p, self.client
        rng = np.random.default_rng(field.seed + 1)

        def boxes(centres, half, colour, chunk=16):  # PyBullet keeps at most 16 per array
            for k in range(0, len(centres), chunk):
                part = centres[k : k + chunk]
                vs = p.createVisualShapeArray(
                    shapeTypes=[p.GEOM_BOX] * len(part),
                    halfExtents=[half] * len(part),
                    visualFramePositions=part,
                    physicsClientId=cid,
                )
                body = p.createMultiBody(baseMass=0, baseVisualShapeIndex=vs, physicsClientId=cid)
                p.changeVisualShape(body, -1, rgbaColor=colour, physicsClientId=cid)

        for r in range(field.n_rows):  # each row a slightly different green
            xy = field.plant_xy[field.plant_row == r]
            green = [0.2 + 0.1 * rng.random(), rng.uniform(0.45, 0.65), 0.15, 1]
            # the stem reaches up under its flower head (and is wider than it), so no camera sees
            # soil between a head and its stem: a head's edge never passes for a stem's base
            half_h = FLOWER_HEIGHT_M / 2 - 0.001
            stem = [PLANT_RADIUS_M, PLANT_RADIUS_M, half_h]
            boxes([[float(x), float(y), half_h] for x, y in xy], stem, green)
        boxes(
            [[float(x), float(y), 0.03] for x, y in field.weed_xy],
            [0.05, 0.05, 0.03],
            [0.3, 0.55, 0.2, 1],
        )
        self._flower_heads(field, lighting)

    def _flower_heads(self, field: Field, lighting: float) -> None:
        """One mesh per row: a ``FLOWER_SIZE_M`` square per plant, textured from an atlas of the
        row's close-ups (at ``lighting`` variation) (PyBullet loads textures from files: the atlas is written to a temporary
        PNG and read back)."""
        import tempfile

        from PIL import Image

        from fieldnotes.robot.plants import plant_image

        p, cid = self.p, self.client
        tile, gutter = 64, 2
        h = FLOWER_SIZE_M / 2
        with tempfile.TemporaryDirectory(prefix="fieldnotes-flowers-") as tmp:
            for r in range(field.n_rows):
                ids = np.flatnonzero(field.plant_row == r)
                if not len(ids):
                    continue
                cols = int(math.ceil(math.sqrt(len(ids))))
                rows = int(math.ceil(len(ids) / cols))
                step = tile + 2 * gutter
                atlas = np.zeros((rows * step, cols * step, 3), np.uint8)
                verts, uvs, idx = [], [], []
                for n, k in enumerate(ids):
                    i, j = divmod(n, cols)
                    img = plant_image(field, int(k), tile, lighting, "foliage")
                    atlas[i * step : (i + 1) * step, j * step : (j + 1) * step] = np.pad(
                        img, ((gutter, gutter), (gutter, gutter), (0, 0)), mode="edge"
                    )
                    # texture v runs up from the atlas's bottom row; image row 0 is its top
                    u0, u1 = (
                        (j * step + gutter) / atlas.shape[1],
                        (j * step + gutter + tile) / atlas.shape[1],
                    )
                    v1 = 1 - (i * step + gutter) / atlas.shape[0]
                    v0 = 1 - (i * step + gutter + tile) / atlas.shape[0]
                    x, y = field.plant_xy[k]
                    base = len(verts)
                    verts += [
                        [x - h, y - h, 0],
                        [x + h, y - h, 0],
                        [x + h, y + h, 0],
                        [x - h, y + h, 0],
                    ]
                    # the close-up's top edge toward +y, its left edge toward -x (seen from above)
                    uvs += [[u0, v0], [u1, v0], [u1, v1], [u0, v1]]
                    idx += [base, base + 1, base + 2, base, base + 2, base + 3]
                path = f"{tmp}/row{r}.png"
                Image.fromarray(atlas).save(path)
                tex = p.loadTexture(path, physicsClientId=cid)
                vs = p.createVisualShape(
                    p.GEOM_MESH,
                    vertices=[[float(a), float(b), float(c)] for a, b, c in verts],
                    indices=idx,
                    uvs=uvs,
                    normals=[[0, 0, 1]] * len(verts),
                    physicsClientId=cid,
                )
                body = p.createMultiBody(
                    baseMass=0,
                    baseVisualShapeIndex=vs,
                    basePosition=[0, 0, FLOWER_HEIGHT_M],
                    physicsClientId=cid,
                )
                p.changeVisualShape(
                    body, -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1], physicsClientId=cid
                )

    def set_wheels(self, left_mps: float, right_mps: float) -> None:
        """Velocity-control the four wheels: left pair and right pair (m/s at the rim)."""
        r = self.geometry.wheel_radius_m
        for joints, speed in ((self.left_joints, left_mps), (self.right_joints, right_mps)):
            for j in joints:
                self.p.setJointMotorControl2(
                    self.robot,
                    j,
                    self.p.VELOCITY_CONTROL,
                    targetVelocity=speed / r,
                    force=self.wheel_force,
                    physicsClientId=self.client,
                )

    def advance(self, seconds: float) -> None:
        """Step the physics for ``seconds`` (rounded to whole time steps)."""
        n = max(1, int(round(seconds / self.time_step)))
        for _ in range(n):
            self.p.stepSimulation(physicsClientId=self.client)
        self.time_s += n * self.time_step

    def pose(self) -> tuple[float, float, float]:
        """Ground-truth (x m, y m, yaw rad) of the chassis: for tests, figures and scoring; a
        mission's robot never reads it (it has :meth:`wheel_angles`, :meth:`yaw_rate`, cameras)."""
        return self.render_pose()

    def render_pose(self) -> tuple[float, float, float]:
        """The chassis's (x m, y m, yaw rad) as the renderer places the cameras and the referee
        scores the run."""
        pos, quat = self.p.getBasePositionAndOrientation(self.robot, physicsClientId=self.client)
        yaw = self.p.getEulerFromQuaternion(quat)[2]
        return float(pos[0]), float(pos[1]), float(yaw)

    def wheel_angles(self) -> tuple[float, float]:
        """Mean angle (rad) of the left pair and of the right pair of wheel joints: what encoders
        on the motor shafts would count."""
        p, cid = self.p, self.client
        sides = []
        for joints in (self.left_joints, self.right_joints):
            states = p.getJointStates(self.robot, list(joints), physicsClientId=cid)
            sides.append(float(np.mean([s[0] for s in states])))
        return sides[0], sides[1]

    def yaw_rate(self) -> float:
        """The chassis's turn rate about the vertical (rad/s, + = left): what a gyro measures."""
        _, angular = self.p.getBaseVelocity(self.robot, physicsClientId=self.client)
        return float(angular[2])

    def camera_image(self) -> np.ndarray:
        """RGB frame (H, W, 3 uint8) from the forward camera on its mast (TinyRenderer)."""
        p, cam = self.p, self.camera
        x, y, yaw = self.render_pose()
        c, s = math.cos(yaw), math.sin(yaw)
        pitch = math.radians(cam.pitch_deg)
        eye = [x + cam.forward_m * c, y + cam.forward_m * s, cam.mount_height_m]
        target = [
            eye[0] + math.cos(pitch) * c,
            eye[1] + math.cos(pitch) * s,
            eye[2] - math.sin(pitch),
        ]
        up = [math.sin(pitch) * c, math.sin(pitch) * s, math.cos(pitch)]
        view = p.computeViewMatrix(eye, target, up, physicsClientId=self.client)
        return self._render(view, cam)

    def side_camera_image(self, side: int) -> np.ndarray:
        """RGB frame (H, W, 3 uint8) from the side camera on side ``side`` (+1 left, −1 right),
        looking down at the flower heads beside the robot (TinyRenderer)."""
        p, cam = self.p, self.side_camera
        eye, target, up = side_view(self.render_pose(), cam, side)
        view = p.computeViewMatrix(list(eye), list(target), list(up), physicsClientId=self.client)
        return self._render(view, cam)

    def _render(self, view, cam) -> np.ndarray:
        """RGB frame (H, W, 3 uint8) of ``view`` through camera ``cam``'s lens (TinyRenderer)."""
        p = self.p
        proj = p.computeProjectionMatrixFOV(
            cam.fov_deg, cam.width / cam.height, cam.near_m, cam.far_m, physicsClientId=self.client
        )
        img = p.getCameraImage(
            cam.width,
            cam.height,
            view,
            proj,
            renderer=p.ER_TINY_RENDERER,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self.client,
        )
        rgba = np.reshape(np.asarray(img[2], dtype=np.uint8), (cam.height, cam.width, 4))
        return rgba[:, :, :3].copy()

    def close(self) -> None:
        """Disconnect from the physics server."""
        if self.client is not None:
            self.p.disconnect(physicsClientId=self.client)
            self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class GpioBackend:
    """A Raspberry Pi driving two motor channels (left side, right side) with gpiozero.

    Wheel speeds map linearly to motor duty cycles (speed / top speed). The Pi has no position
    sensor here, so ``pose`` is open-loop dead reckoning from the commands, with the cardboard
    chassis's parameters unless ``geometry`` says otherwise.

    gpiozero's ``Motor`` drives its pins with PWM by default, which needs a pin factory that can
    do PWM: on a Raspberry Pi 5 (and on any Pi with Raspberry Pi OS Bookworm) that is ``lgpio``
    (then ``GPIOZERO_PIN_FACTORY=lgpio`` or ``pin_factory=gpiozero.pins.lgpio.LGPIOFactory()``).
    Without one gpiozero falls back to a factory that cannot do PWM and ``Motor`` fails; tests use
    gpiozero's ``MockFactory`` with ``pin_class=MockPWMPin``.

    Installing on the Pi: the package's main dependencies include torch, so install it without
    them and then the ``pi`` extra's pins alone (numpy, scipy, gpiozero, lgpio, onnxruntime, as
    listed in ``pyproject.toml``)::

        pip install --no-deps .
        pip install numpy==2.4.6 scipy==1.17.1 gpiozero==2.0.1.post3 lgpio==0.2.2.0 \
            onnxruntime==1.32.0

    (``pip install "fieldnotes[pi]"`` would pull torch with the main dependencies.)
    """

    def __init__(
        self,
        left_pins: tuple[int, int] = (17, 18),
        right_pins: tuple[int, int] = (22, 23),
        geometry: SkidSteer = CARDBOARD,
        pin_factory=None,
        sleep: bool = True,
    ):
        from gpiozero import Motor, Robot

        self.geometry = geometry
        self.left_motor = Motor(*left_pins, pin_factory=pin_factory)
        self.right_motor = Motor(*right_pins, pin_factory=pin_factory)
        self.robot = Robot(left=self.left_motor, right=self.right_motor, pin_factory=pin_factory)
        self.sleep = sleep
        self.time_s = 0.0
        self._odometry = KinematicBackend(geometry)

    def set_wheels(self, left_mps: float, right_mps: float) -> None:
        """Set the two motor channels to speed / top speed (clipped to [-1, 1])."""
        top = self.geometry.max_speed_mps
        lv = float(np.clip(left_mps / top, -1, 1))
        rv = float(np.clip(right_mps / top, -1, 1))
        self.robot.value = (lv, rv)
        self._odometry.set_wheels(lv * top, rv * top)

    def advance(self, seconds: float) -> None:
        """Let the motors run for ``seconds`` (really sleeps unless ``sleep=False``)."""
        if self.sleep:
            time.sleep(seconds)
        self._odometry.advance(seconds)
        self.time_s += seconds

    def pose(self) -> tuple[float, float, float]:
        """Dead-reckoned (x m, y m, yaw rad)."""
        return self._odometry.pose()

    def close(self) -> None:
        """Stop and release the GPIO pins."""
        self.robot.close()


class Program:
    """The cardboard robot's program: ``forward``, ``left``, ``right``, ``stop`` (and ``drive``).

    With ``seconds`` the command runs for that long and returns; without, it sets the wheels and
    returns at once (the caller advances time).
    """

    def __init__(self, backend: Backend, speed: float = 0.5, turn_rate: float = 1.0):
        if not (math.isfinite(speed) and speed > 0 and math.isfinite(turn_rate) and turn_rate > 0):
            raise ValueError(
                f"speed (m/s) and turn_rate (rad/s) must be finite and > 0, got {speed}, {turn_rate}"
            )
        self.backend = backend
        self.speed = speed
        self.turn_rate = turn_rate

    def drive(self, v: float, omega: float, seconds: float | None = None) -> None:
        """Body speed ``v`` (m/s) and turn rate ``omega`` (rad/s, + = left)."""
        self.backend.set_wheels(*wheel_speeds(v, omega, self.backend.geometry))
        if seconds is not None:
            self.backend.advance(seconds)

    def forward(self, speed: float | None = None, seconds: float | None = None) -> None:
        """Go straight at ``speed`` (m/s; negative = backwards)."""
        self.drive(self.speed if speed is None else speed, 0.0, seconds)

    def left(self, rate: float | None = None, seconds: float | None = None) -> None:
        """Turn left on the spot at ``rate`` (rad/s)."""
        self.drive(0.0, self.turn_rate if rate is None else abs(rate), seconds)

    def right(self, rate: float | None = None, seconds: float | None = None) -> None:
        """Turn right on the spot at ``rate`` (rad/s)."""
        self.drive(0.0, -(self.turn_rate if rate is None else abs(rate)), seconds)

    def stop(self, seconds: float | None = None) -> None:
        """Stop all wheels."""
        self.backend.set_wheels(0.0, 0.0)
        if seconds is not None:
            self.backend.advance(seconds)


@dataclass(frozen=True)
class SquareRun:
    """A timed square: the poses (N, 3: x m, y m, yaw rad), how far the end is from the start (m),
    and for each timed left how much the heading changed (rad) and the centre moved (m)."""

    path: np.ndarray
    gap_m: float
    turns_rad: tuple[float, ...]
    turn_slides_m: tuple[float, ...]


def square(
    program: Program, side_s: float = 2.0, quarter_turn_s: float | None = None, steps: int = 10
) -> SquareRun:
    """Forward for ``side_s`` seconds, left for a timed quarter turn, four times — the cardboard
    robot's first dance, open loop. ``quarter_turn_s`` defaults to (π/2) / the program's turn rate;
    each move is sampled ``steps`` times."""
    if side_s <= 0 or steps < 1:
        raise ValueError(f"side_s must be > 0 seconds and steps >= 1, got {side_s}, {steps}")
    quarter_turn_s = quarter_turn_s or (math.pi / 2) / program.turn_rate
    if quarter_turn_s <= 0:
        raise ValueError(f"quarter_turn_s must be > 0 seconds, got {quarter_turn_s}")
    path = [program.backend.pose()]
    turns, slides = [], []
    for _ in range(4):
        for is_turn, move, seconds in (
            (False, program.forward, side_s),
            (True, program.left, quarter_turn_s),
        ):
            before = program.backend.pose()
            move()
            for _ in range(steps):
                program.backend.advance(seconds / steps)
                path.append(program.backend.pose())
            if is_turn:
                after = path[-1]
                turns.append(wrap_angle(after[2] - before[2]))
                slides.append(math.dist(after[:2], before[:2]))
    program.stop()
    poses = np.array(path)
    return SquareRun(
        path=poses,
        gap_m=float(math.dist(poses[-1, :2], poses[0, :2])),
        turns_rad=tuple(turns),
        turn_slides_m=tuple(slides),
    )
