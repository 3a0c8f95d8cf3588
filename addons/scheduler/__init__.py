"""Cron jobs: their schedules, their rows, their runs, and the scheduler process."""
