"""Points: priority arrays, point status, tuning and poll/write scheduling (pure)."""
