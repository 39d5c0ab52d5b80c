"""Chapter 4: the field robot — a breeding plot, a flower classifier, and a robot that drives the rows.

Modules: ``field`` (the plot), ``plants`` (flower close-ups), ``classifier`` (the flower CNN),
``row_detector`` (crop rows from the forward camera), ``sensing`` (encoders, gyro, camera
noise), ``localisation`` (the EKF the robot steers by), ``drive`` (forward/left/right/stop over skid-steer kinematics; kinematic, PyBullet and
gpiozero backends), ``control`` (PID row following, headland U-turns), ``mission`` (a whole run and
its scores), ``figures`` (maps, galleries, the animation). PyBullet, torch and gpiozero are imported
inside the functions that need them. Run a mission from the shell with ``python -m fieldnotes.robot``.
"""

from fieldnotes.robot.field import FEMALE, LABELS, MALE, Field, make_field, parse_pattern

__all__ = ["FEMALE", "LABELS", "MALE", "Field", "make_field", "parse_pattern"]
