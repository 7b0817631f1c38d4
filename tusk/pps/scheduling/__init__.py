"""When jobs happen: new input heads become output commits and jobs (trigger), cron ticks, the
one leader that schedules (lease), and the scheduler that runs each pipeline's jobs in order."""
