"""Internal utilities shared by the estimators of skstellar."""
