//! Cron schedules with the grammar of robfig/cron v3's standard parser,
//! which the Kubernetes CronJob controller uses.
