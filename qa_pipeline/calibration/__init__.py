"""Measuring the machine against people: labels, agreement, candidate rubrics, the calibration page."""
