"""Reports: the figures on the console dashboard, computed in SQL."""
