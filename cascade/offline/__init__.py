"""Work on recorded outcomes, with no provider called: evaluation and calibration."""
