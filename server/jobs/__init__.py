"""jobs room: expiry, cyclic tier periods, outbox relay; safe with many replicas."""

from arbiter.server.jobs.runner import JobReport, JobRunner, log_sender, redis_sender

__all__ = ["JobReport", "JobRunner", "log_sender", "redis_sender"]
