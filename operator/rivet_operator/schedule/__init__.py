"""Recurring exports: a RivetSchedule creates one RivetExport per cron tick (the pure core, no kopf, no API).

As a CronJob creates Jobs (and CloudNativePG's ScheduledBackup creates Backups), each tick becomes its own
RivetExport, so an export stays exactly one run with one readiness signal for Argo CD and Flux.

- `cron`: fire times of a cron expression in an IANA zone, correct across DST (cronsim).
- `spec`: the schedule's spec checked, with defaults; what the schedule reads from an owned export.
- `builders`: the RivetExport for one tick (name, owner, labels, date, exportName, cursor).
- `decide`: one reconcile as a pure function, (schedule, owned exports, now) -> ordered actions.
- `crd`: the RivetSchedule CustomResourceDefinition as data.
"""
