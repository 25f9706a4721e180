"""The recurrent forecaster's settings: `ForecastConfig` lives in rnnlab.config beside the other configs,
so the command line can build `forecast train`'s flags from it without importing pandas; it is named here
too because forecasting code and users' scripts import it from this module."""

from rnnlab.config import COMBINES, FORECAST_CELLS, HEADS, SCALERS, WINDOW_NORMS, ForecastConfig, parse_levels

__all__ = ["COMBINES", "FORECAST_CELLS", "HEADS", "SCALERS", "WINDOW_NORMS", "ForecastConfig", "parse_levels"]
