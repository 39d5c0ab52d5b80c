"""The workshop: press forward / left / right / stop and watch the simulated Husky obey.

``Workshop`` keeps one PyBullet world alive between presses; each press runs the cardboard
program's move for ``seconds`` and returns a picture of where the robot is and what it sees.
"""

from __future__ import annotations

import math

import numpy as np

from fieldnotes.robot.drive import Program, PyBulletBackend
from fieldnotes.robot.field import Field, make_field
from fieldnotes.robot.mission import lane_x

COMMANDS = ("forward", "left", "right", "stop")


class Workshop:
    """A small plot, a Husky at the start of its first lane, and a log of presses."""

    def __init__(self, field_: Field | None = None, seconds: float = 1.0, speed: float = 0.5):
        if seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        self.field = field_ or make_field(rows=2, plants_per_row=8, seed=0)
        self.seconds = seconds
        start = (lane_x(self.field, 1), -0.8, math.pi / 2)
        self.sim = PyBulletBackend(self.field, start=start)
        self.program = Program(self.sim, speed=speed, turn_rate=0.6)
        self.path = [self.sim.pose()]
        self.log: list[str] = []

    def press(self, command: str) -> tuple[float, float, float]:
        """Run ``command`` (forward, left, right or stop) for ``seconds``; returns the new pose."""
        if command not in COMMANDS:
            raise ValueError(f"command must be one of {COMMANDS}, got {command!r}")
        move = getattr(self.program, command)
        steps = 5
        move()
        for _ in range(steps):
            self.sim.advance(self.seconds / steps)
            self.path.append(self.sim.pose())
        if command != "stop":
            self.program.stop()
        self.log.append(command)
        return self.sim.pose()

    def figure(self):
        """Top-down view with the path so far, next to the robot's camera frame."""
        import matplotlib.pyplot as plt

        from fieldnotes.robot.figures import draw_robot, plot_field

        fig, (ax, axc) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [1, 1.2]})
        plot_field(self.field, ax=ax)
        ax.get_legend().remove()
        path = np.asarray(self.path)
        ax.plot(path[:, 0], path[:, 1], color="0.3", lw=1)
        draw_robot(ax, self.path[-1])
        ax.set_xlim(-1.5, self.field.row_spacing_m * self.field.n_rows + 0.3)
        ax.set_ylim(-2, self.field.row_length_m + 1)
        x, y, yaw = self.path[-1]
        ax.set_title(
            f"after {' → '.join(self.log) or 'no presses'}\n"
            f"x = {x:.2f} m, y = {y:.2f} m, heading {math.degrees(yaw):.0f}°",
            fontsize=9,
        )
        axc.imshow(self.sim.camera_image())
        axc.set_title("what the camera sees", fontsize=9)
        axc.set_xlabel("column (px)")
        axc.set_ylabel("row (px)")
        fig.tight_layout()
        return fig

    def close(self) -> None:
        """Shut the simulation down."""
        self.sim.close()
