"""The experiment layer: trials, recipes, runners, executors (local, Ray), the results store and reports."""
