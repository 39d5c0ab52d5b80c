"""The workshop's buttons move the simulated robot the way their names say."""

import math

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402

from fieldnotes.robot.drive import wrap_angle  # noqa: E402
from fieldnotes.robot.workshop import Workshop  # noqa: E402


def test_buttons_move_the_robot():
    ws = Workshop(seconds=1.0)
    try:
        x0, y0, yaw0 = ws.sim.pose()
        x1, y1, yaw1 = ws.press("forward")
        assert y1 - y0 > 0.2 and abs(x1 - x0) < 0.05  # heading +y: forward is +y
        _, _, yaw2 = ws.press("left")
        assert wrap_angle(yaw2 - yaw1) > 0.2
        _, _, yaw3 = ws.press("right")
        assert wrap_angle(yaw3 - yaw2) < -0.2
        p = ws.press("stop")
        assert math.dist(p[:2], ws.press("stop")[:2]) < 0.02
        assert ws.log == ["forward", "left", "right", "stop", "stop"]
        fig = ws.figure()
        assert len(fig.axes) == 2
        with pytest.raises(ValueError, match="command"):
            ws.press("jump")
    finally:
        ws.close()
