//! `tripline run`: a long-lived daemon. It schedules each rule instance by its cron expression,
//! runs due instances together (so their queries merge), serves health, metrics and the JSON API,
//! reloads on SIGHUP (keeping the old config if the new one is bad) and on SIGTERM finishes the
//! cycle in flight before exiting.

mod amapi;
mod auth;
mod http;
mod limits;
pub mod metrics;
pub mod scheduler;

use crate::assembly::{self as wire, WireOptions};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::config::Config;
use crate::engine::CycleReport;
use crate::error::{Error, Result};
use crate::Tripline;
use metrics::Metrics;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::RwLock;

/// State shared by the scheduler loop and the HTTP server.
pub struct Daemon {
    config_path: PathBuf,
    engine: RwLock<Arc<Tripline>>,
    config: RwLock<Config>,
    metrics: Metrics,
    ready: AtomicBool,
    last_run: Mutex<HashMap<String, Timestamp>>,
    clock: Arc<dyn Clock>,
    /// Wakes the notification loop early (alerts just arrived through the API).
    wake: tokio::sync::Notify,
    /// When this process started (Alertmanager's `uptime` in `GET /api/v2/status`).
    started_at: Timestamp,
    /// Deliveries went out since the freed heap was last handed back (`release_freed_heap`).
    heap_to_return: AtomicBool,
}

fn describe(m: &Metrics) {
    for (name, kind, help) in [
        ("tripline_cycles_total", "counter", "Evaluation cycles run."),
        ("tripline_cycle_duration_seconds", "histogram", "Duration of evaluation cycles (plan, fetch, evaluate, store, notify)."),
        ("tripline_last_cycle_duration_seconds", "gauge", "Duration of the last cycle."),
        ("tripline_missed_cycles_total", "counter", "Scheduled ticks that were missed (a pause or a slow cycle) and folded into one evaluation."),
        ("tripline_evaluations_total", "counter", "Rule instance evaluations."),
        ("tripline_evaluation_duration_seconds", "histogram", "Time spent in query+evaluate per rule instance (fetching excluded)."),
        ("tripline_rule_evaluation_failures_total", "counter", "Rule instance evaluations that failed, in the script or because a source failed (as Prometheus's prometheus_rule_evaluation_failures_total)."),
        ("tripline_rule_errors_total", "counter", "Rule instance evaluations that failed in the script."),
        ("tripline_source_errors_total", "counter", "Rule instance evaluations that failed because a source failed."),
        ("tripline_source_requests_total", "counter", "API requests made by each source."),
        ("tripline_source_operation_requests_total", "counter", "API requests made by each source, by operation (GetMetricData, ListMetrics, …)."),
        ("tripline_api_calls_per_cycle", "gauge", "API requests made by the last cycle, by source."),
        ("tripline_queries_per_cycle", "gauge", "Distinct queries fetched by the last cycle."),
        ("tripline_alerts", "gauge", "Alerts in the store by state."),
        ("tripline_notifications_total", "counter", "Notifications by receiver and outcome: queued (into the outbox), sent, failed (will retry), rate_limited (a 429: will retry, not counted as an attempt), dead_lettered."),
        ("tripline_outbox_depth", "gauge", "Notifications waiting in the outbox."),
        ("tripline_config_reloads_total", "counter", "Config reloads by result."),
    ] {
        m.describe(name, kind, help);
    }
}

impl Daemon {
    /// Loads the config and builds the engine; the daemon is ready once this returns.
    pub fn start(config_path: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Daemon>> {
        let config = Config::load(config_path)?;
        let engine = wire::build(
            &config,
            WireOptions {
                clock: clock.clone(),
                ..Default::default()
            },
        )?;
        let metrics = Metrics::default();
        describe(&metrics);
        Ok(Arc::new(Daemon {
            config_path: config_path.to_path_buf(),
            engine: RwLock::new(Arc::new(engine)),
            config: RwLock::new(config),
            metrics,
            ready: AtomicBool::new(true),
            last_run: Mutex::new(HashMap::new()),
            started_at: clock.now(),
            heap_to_return: AtomicBool::new(false),
            clock,
            wake: tokio::sync::Notify::new(),
        }))
    }

    pub async fn engine(&self) -> Arc<Tripline> {
        self.engine.read().await.clone()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Re-reads the config and rules. A config that does not check is rejected, logged, and the
    /// running one kept.
    pub async fn reload(&self) -> Result<()> {
        let result = Config::load(&self.config_path).and_then(|c| {
            let e = wire::build(
                &c,
                WireOptions {
                    clock: self.clock.clone(),
                    tolerate_rule_errors: false,
                    ..Default::default()
                },
            )?;
            Ok((c, e))
        });
        match result {
            Ok((c, e)) => {
                *self.engine.write().await = Arc::new(e);
                *self.config.write().await = c;
                self.metrics
                    .inc("tripline_config_reloads_total", &[("result", "ok")], 1.0);
                tracing::info!(config = %self.config_path.display(), "config reloaded");
                Ok(())
            }
            Err(err) => {
                self.metrics.inc(
                    "tripline_config_reloads_total",
                    &[("result", "rejected")],
                    1.0,
                );
                let lines: Vec<String> = err.flatten().iter().map(|e| e.to_string()).collect();
                tracing::error!(config = %self.config_path.display(), errors = %lines.join("; "), "config reload rejected, keeping the running config");
                Err(Error::Config(lines.join("\n")))
            }
        }
    }

    /// Runs whatever is due at `now` as one cycle. Returns `None` when nothing was due.
    pub async fn tick(&self, started: Timestamp, now: Timestamp) -> Result<Option<CycleReport>> {
        let engine = self.engine().await;
        let schedules: Vec<(String, cron::Schedule)> = engine
            .instances()
            .iter()
            .map(|i| (i.name.clone(), i.schedule.clone()))
            .collect();
        let due = {
            let last = self.last_run.lock().expect("last_run");
            scheduler::due(&schedules, &last, started, now)
        };
        if due.instances.is_empty() {
            return Ok(None);
        }
        self.run_instances(&engine, due.instances, due.missed, now)
            .await
            .map(Some)
    }

    /// Runs every rule instance at `now` as one cycle, due or not (`evaluate_on_start`).
    pub async fn evaluate_all(&self, now: Timestamp) -> Result<CycleReport> {
        let engine = self.engine().await;
        let all = engine.instances().iter().map(|i| i.name.clone()).collect();
        self.run_instances(&engine, all, 0, now).await
    }

    async fn run_instances(
        &self,
        engine: &Arc<Tripline>,
        instances: Vec<String>,
        missed: u64,
        now: Timestamp,
    ) -> Result<CycleReport> {
        let due = scheduler::Due { instances, missed };
        if due.missed > 0 {
            self.metrics
                .inc("tripline_missed_cycles_total", &[], due.missed as f64);
            tracing::warn!(
                missed = due.missed,
                "missed scheduled ticks; evaluating once"
            );
        }
        let before: HashMap<String, u64> = engine.source_requests().into_iter().collect();
        let t0 = std::time::Instant::now();
        let report = engine.run_cycle_at(now, Some(&due.instances)).await?;
        let took = t0.elapsed();
        {
            let mut last = self.last_run.lock().expect("last_run");
            for i in &due.instances {
                last.insert(i.clone(), now);
            }
        }
        self.record(engine, &report, &before, took).await;
        Ok(report)
    }

    async fn record(
        &self,
        engine: &Tripline,
        r: &CycleReport,
        before: &HashMap<String, u64>,
        took: std::time::Duration,
    ) {
        let m = &self.metrics;
        m.inc("tripline_cycles_total", &[], 1.0);
        m.observe("tripline_cycle_duration_seconds", &[], took.as_secs_f64());
        m.set(
            "tripline_last_cycle_duration_seconds",
            &[],
            took.as_secs_f64(),
        );
        m.set("tripline_queries_per_cycle", &[], r.queries as f64);
        for (instance, d) in &r.eval_durations {
            m.inc("tripline_evaluations_total", &[("instance", instance)], 1.0);
            m.observe(
                "tripline_evaluation_duration_seconds",
                &[("instance", instance)],
                d.as_secs_f64(),
            );
        }
        for (instance, _) in &r.rule_failures {
            m.inc("tripline_rule_errors_total", &[("instance", instance)], 1.0);
        }
        for instance in r
            .rule_failures
            .iter()
            .map(|(i, _)| i)
            .chain(r.source_failures.iter().map(|(i, _)| i))
        {
            m.inc(
                "tripline_rule_evaluation_failures_total",
                &[("instance", instance)],
                1.0,
            );
        }
        for (instance, f) in &r.source_failures {
            m.inc(
                "tripline_source_errors_total",
                &[("instance", instance), ("source", &f.source)],
                1.0,
            );
        }
        for (kind, op, total) in engine.source_requests_by_operation() {
            m.set(
                "tripline_source_operation_requests_total",
                &[("source", &kind), ("operation", &op)],
                total as f64,
            );
        }
        for (kind, total) in engine.source_requests() {
            m.set(
                "tripline_source_requests_total",
                &[("source", &kind)],
                total as f64,
            );
            m.set(
                "tripline_api_calls_per_cycle",
                &[("source", &kind)],
                (total - before.get(&kind).copied().unwrap_or(0)) as f64,
            );
        }
        for n in &r.notifications {
            m.inc(
                "tripline_notifications_total",
                &[("receiver", &n.receiver), ("outcome", "queued")],
                1.0,
            );
        }
        self.record_delivery(&r.delivery);
        // Also set between cycles by the notify loop; set here too so that it is there after the
        // first cycle, which runs at start, before the loop's first tick.
        if let Ok(n) = engine.outbox().pending().await {
            m.set("tripline_outbox_depth", &[], n as f64);
        }
        let sent: usize = r.delivery.sent.values().sum();
        if let Ok(alerts) = engine.store().load_alerts().await {
            m.clear("tripline_alerts");
            for state in ["pending", "firing", "resolved"] {
                let n = alerts.iter().filter(|a| a.state.as_str() == state).count();
                m.set("tripline_alerts", &[("state", state)], n as f64);
            }
        }
        let firing = r
            .alerts
            .iter()
            .filter(|a| a.state == crate::alert::AlertState::Firing)
            .count();
        tracing::info!(
            at = %r.at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            instances = r.instances_evaluated,
            queries = r.queries,
            firing,
            transitions = r.transitions.iter().filter(|t| t.is_announced()).count(),
            notifications = sent,
            rule_errors = r.rule_failures.len(),
            source_errors = r.source_failures.len(),
            duration_ms = took.as_millis() as u64,
            "cycle"
        );
    }

    /// Runs the notification pipeline now rather than at its next tick.
    pub fn wake_notify(&self) {
        self.wake.notify_one();
    }

    /// Counts one delivery pass: sent, failed (to be retried) and dead-lettered, per receiver.
    fn record_delivery(&self, d: &crate::notify::outbox::DeliveryReport) {
        for (receiver, n) in &d.sent {
            self.metrics.inc(
                "tripline_notifications_total",
                &[("receiver", receiver), ("outcome", "sent")],
                *n as f64,
            );
        }
        for (outcome, failures) in [("failed", &d.retrying), ("dead_lettered", &d.dead)] {
            for f in failures {
                let outcome = if f.rate_limited {
                    "rate_limited"
                } else {
                    outcome
                };
                self.metrics.inc(
                    "tripline_notifications_total",
                    &[("receiver", &f.receiver), ("outcome", outcome)],
                    1.0,
                );
            }
        }
    }

    /// The notification pipeline between cycles: group waits, escalation steps, silences that
    /// ended, paced and retried deliveries. Returns how long to wait before the next call: at
    /// most a second, less when a paced or retried delivery comes due sooner.
    pub async fn notify_tick(&self, now: Timestamp) -> std::time::Duration {
        let engine = self.engine().await;
        let mut wake = None;
        match engine.notify_at(now).await {
            Ok((flush, delivery)) => {
                for n in &flush.commit.notifications {
                    self.metrics.inc(
                        "tripline_notifications_total",
                        &[("receiver", &n.receiver), ("outcome", "queued")],
                        1.0,
                    );
                }
                self.record_delivery(&delivery);
                if !delivery.delivered.is_empty() {
                    self.heap_to_return.store(true, Ordering::Relaxed);
                }
                if !flush.commit.notifications.is_empty() || !delivery.delivered.is_empty() {
                    tracing::debug!(
                        queued = flush.commit.notifications.len(),
                        delivered = delivery.delivered.len(),
                        "notify"
                    );
                }
                // The loop wakes for the next paced or retried delivery, and for the group
                // timers this flush set (or the last quiet plan's next due instant): a group's
                // first message then goes at `group_wait`, not at the next whole tick after it.
                // A timer this flush set that has passed while its deliveries went out (a storm's
                // sending took longer than `group_interval`) is due now: the next flush runs at
                // once, as Alertmanager's group timer would fire, not a whole tick later.
                let now = self.clock.now();
                let timers = flush
                    .commit
                    .groups_saved
                    .iter()
                    .map(|g| g.next_flush.max(now))
                    .chain(engine.pipeline().quiet_until().filter(|t| *t > now));
                wake = timers.chain(delivery.wake_at).min();
            }
            Err(e) => tracing::error!("notification pipeline failed: {e}"),
        }
        if let Ok(n) = engine.outbox().pending().await {
            self.metrics.set("tripline_outbox_depth", &[], n as f64);
            if n == 0 && self.heap_to_return.swap(false, Ordering::Relaxed) {
                release_freed_heap();
            }
        }
        let second = std::time::Duration::from_secs(1);
        match wake {
            Some(next) => (next - self.clock.now())
                .to_std()
                .unwrap_or_default()
                .clamp(std::time::Duration::from_millis(20), second),
            None => second,
        }
    }

    /// Whether the store answers (readiness).
    pub async fn store_ok(&self) -> bool {
        self.engine().await.store().get_meta("health").await.is_ok()
    }
}

/// Hands the memory freed since the last call back to the OS. glibc keeps what a storm's
/// flushes freed (their notifications, bodies and snapshots) in its arenas, so the process would
/// stay at its peak size after the storm passed; the daemon calls this once the outbox has been
/// drained after deliveries. It runs on a blocking thread (a large heap takes milliseconds).
fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only returns free pages of the allocator's own arenas to the OS.
        unsafe { libc::malloc_trim(0) };
    });
}

/// Runs the daemon until SIGTERM/SIGINT. Exit happens after the cycle in flight completes.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let daemon = Daemon::start(config_path, clock.clone())?;
    let server = daemon.config.read().await.raw.server.clone();
    let shutdown_timeout = crate::clock::parse_duration(server.shutdown_timeout.get_ref())
        .map_err(anyhow::Error::msg)?
        .to_std()?;
    let listener = tokio::net::TcpListener::bind(&server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    eprintln!("tripline: listening on http://{addr}");
    let token = std::env::var(&server.token_env)
        .ok()
        .filter(|t| !t.is_empty());
    if token.is_none() {
        tracing::warn!(env = %server.token_env, "no API token set: mutating API calls are refused");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app = http::router(
        daemon.clone(),
        auth::Auth {
            token,
            open_reads: server.open_reads,
        },
    );
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await;
    });

    let notify_daemon = daemon.clone();
    let notify_clock = clock.clone();
    let mut notify_stop = stop_rx.clone();
    let notify_task = tokio::spawn(async move {
        let mut wait = std::time::Duration::from_secs(1);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {
                    wait = notify_daemon.notify_tick(notify_clock.now()).await;
                }
                _ = notify_daemon.wake.notified() => {
                    wait = notify_daemon.notify_tick(notify_clock.now()).await;
                }
                _ = async { let _ = notify_stop.wait_for(|s| *s).await; } => break,
            }
        }
    });

    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let started = clock.now();
    if server.evaluate_on_start {
        match daemon.evaluate_all(started).await {
            Ok(r) => tracing::info!(
                alerts = r.alerts.len(),
                "evaluated every rule instance at start"
            ),
            Err(e) => tracing::error!("cycle at start failed: {e}"),
        }
    }
    loop {
        let engine = daemon.engine().await;
        let schedules: Vec<(String, cron::Schedule)> = engine
            .instances()
            .iter()
            .map(|i| (i.name.clone(), i.schedule.clone()))
            .collect();
        drop(engine);
        let now = clock.now();
        let wait = scheduler::next_tick(&schedules, now)
            .map(|t| (t - now).to_std().unwrap_or_default())
            .unwrap_or(std::time::Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {
                // Signals that arrive during the cycle wait for it: that is "finish the cycle in flight".
                if let Err(e) = daemon.tick(started, clock.now()).await {
                    tracing::error!("cycle failed: {e}");
                }
            }
            _ = hup.recv() => { let _ = daemon.reload().await; }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping: no new cycles");
    let _ = stop_tx.send(true);
    let _ = notify_task.await;
    // Drain what the outbox holds, within the shutdown budget; the rest waits for the next start.
    let engine = daemon.engine().await;
    match engine
        .outbox()
        .deliver_until_idle(clock.as_ref(), shutdown_timeout)
        .await
    {
        Ok(r) if !r.delivered.is_empty() => {
            tracing::info!(delivered = r.delivered.len(), "outbox drained")
        }
        Ok(_) => {}
        Err(e) => tracing::error!("draining the outbox: {e}"),
    }
    if tokio::time::timeout(shutdown_timeout, http_task)
        .await
        .is_err()
    {
        tracing::warn!("HTTP server did not stop within the shutdown timeout");
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// A daemon on a SQLite file and a manual clock at `t0`, one console receiver, grouping by
    /// `alertname` with these `[route]` timers. The directory must outlive the daemon.
    fn daemon_with_route(
        timers: &str,
        t0: Timestamp,
    ) -> (tempfile::TempDir, Arc<Daemon>, Arc<ManualClock>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tripline.toml");
        std::fs::write(
            &path,
            format!(
                r#"stock_rules = false
[store]
type = "sqlite"
path = "{}"
[route]
receiver = "c"
group_by = ["alertname"]
{timers}
[[receiver]]
type = "console"
name = "c"
"#,
                dir.path().join("state.db").display()
            ),
        )
        .unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let daemon = Daemon::start(&path, clock.clone()).unwrap();
        (dir, daemon, clock)
    }

    #[tokio::test]
    async fn the_notification_loop_wakes_at_a_new_groups_group_wait_not_a_whole_tick_later() {
        let t0: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
        let (_dir, daemon, clock) = daemon_with_route(r#"group_wait = "400ms""#, t0);
        // Nothing to do: the loop ticks each second.
        assert_eq!(
            daemon.notify_tick(t0).await,
            std::time::Duration::from_secs(1)
        );
        let posted = crate::ingest::parse_body(
            br#"[{"labels":{"alertname":"A"},"endsAt":"2026-11-01T12:00:00Z"}]"#,
        )
        .unwrap();
        daemon.engine().await.ingest(posted, t0).await.unwrap();
        // The group is made now; its first message is due 400 ms on: the loop wakes then.
        assert_eq!(
            daemon.notify_tick(t0).await,
            std::time::Duration::from_millis(400)
        );
        clock.advance(chrono::Duration::milliseconds(400));
        let at = clock.now();
        let (flush, _) = daemon.engine().await.notify_at(at).await.unwrap();
        assert_eq!(flush.commit.notifications.len(), 1);
    }

    #[tokio::test]
    async fn a_group_timer_that_passed_while_its_deliveries_went_out_wakes_the_loop_at_once() {
        let t0: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
        let (_dir, daemon, clock) =
            daemon_with_route("group_wait = \"0s\"\ngroup_interval = \"1s\"", t0);
        let post = |name: &str| {
            crate::ingest::parse_body(
                format!(r#"[{{"labels":{{"alertname":"A","n":"{name}"}},"endsAt":"2026-11-01T12:00:00Z"}}]"#)
                    .as_bytes(),
            )
            .unwrap()
        };
        daemon.engine().await.ingest(post("1"), t0).await.unwrap();
        // The group's first message goes at once; its timer is set for t0 + 1 s. The tick ends
        // (its deliveries done) 300 ms on: the loop waits the 700 ms left.
        clock.set(t0 + chrono::Duration::milliseconds(300));
        assert_eq!(
            daemon.notify_tick(t0).await,
            std::time::Duration::from_millis(700)
        );
        // A second alert joins; the next flush (at t0 + 1 s) sets the timer for t0 + 2 s, and
        // its deliveries end at t0 + 3.5 s, past that timer: the loop goes on at once (the
        // shortest wait, 20 ms), where it used to sleep a whole second.
        let t1 = t0 + chrono::Duration::seconds(1);
        daemon.engine().await.ingest(post("2"), t1).await.unwrap();
        clock.set(t0 + chrono::Duration::milliseconds(3500));
        assert_eq!(
            daemon.notify_tick(t1).await,
            std::time::Duration::from_millis(20)
        );
    }
}
