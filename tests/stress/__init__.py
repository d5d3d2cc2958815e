"""Long-running reliability tests (PYRUNC_STRESS=1; see conftest.py)."""
