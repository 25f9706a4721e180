"""rnnlab: recurrent networks that generate text and forecast series."""
