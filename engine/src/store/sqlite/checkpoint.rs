//! WAL checkpoints off the store's lock. SQLite's automatic checkpoint runs inside the commit
//! that grows the WAL past 1,000 pages: that commit then copies the WAL into the database file
//! and fsyncs it, under the store's mutex, so every POST and flush waits behind it. In a storm
//! of 100,000 alerts that was ≈ 40% of the time the commits held the lock. Here the store's
//! connection never checkpoints (`wal_autocheckpoint = 0`); a thread with its own connection to
//! the same file runs a PASSIVE checkpoint (it never blocks readers or writers) after the
//! store's writes, at most once per `PACE`. What SQLite promises does not change: a commit is
//! in the WAL when it returns, and the WAL is the database until it is checkpointed, including
//! after a crash.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

/// The shortest time between two checkpoints: a burst of commits is copied in one.
const PACE: Duration = Duration::from_millis(100);

/// The checkpoint thread of one store; it ends when this is dropped.
pub(super) struct Checkpointer {
    wake: SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread. `None` if it cannot be started: the store then keeps SQLite's
    /// automatic checkpoint.
    pub(super) fn start(path: &Path) -> Option<Self> {
        let (wake, rx) = sync_channel(1);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("tripline-sqlite-checkpoint".into())
            .spawn(move || run(&path, &rx))
            .ok()?;
        Some(Checkpointer { wake })
    }

    /// The store has written: checkpoint soon. Never blocks (one wake-up is kept at most).
    pub(super) fn poke(&self) {
        let _ = self.wake.try_send(());
    }
}

fn run(path: &PathBuf, rx: &Receiver<()>) {
    let mut conn: Option<Connection> = None;
    while rx.recv().is_ok() {
        if conn.is_none() {
            match Connection::open(path) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cannot open the store for its checkpoints: {e}");
                    continue;
                }
            }
        }
        if let Some(c) = &conn {
            // (busy, WAL frames, frames checkpointed); a busy answer is retried at the next wake.
            if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(path = %path.display(), "checkpoint failed: {e}");
            }
        }
        // Pacing, not synchronisation: the writes of the next PACE are copied together.
        std::thread::sleep(PACE);
    }
}

#[cfg(test)]
mod tests {
    use crate::alert::{AlertState, AlertStore};
    use crate::store::sqlite::{tests::alert, SqliteStore};
    use std::time::{Duration, Instant};

    /// The store's own connection never checkpoints, and what it commits still reaches the
    /// database file: the checkpoint thread copied it there.
    #[tokio::test]
    async fn commits_reach_the_database_file_through_the_checkpoint_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = SqliteStore::open(&path).unwrap();
        let auto: i64 = s
            .with_conn(|c| c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(auto, 0);
        let before = std::fs::metadata(&path).unwrap().len();
        let alerts: Vec<_> = (0..2_000)
            .map(|i| {
                let mut a = alert(&format!("f{i:05}"), AlertState::Firing, None);
                a.summary = "x".repeat(2_000);
                a
            })
            .collect();
        s.save_alerts(&alerts, &[]).await.unwrap();
        // 4 MB committed: in the WAL at once, in the file once checkpointed.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::metadata(&path).unwrap().len() < before + 4_000_000 {
            assert!(
                Instant::now() < deadline,
                "the database file did not grow: {} bytes",
                std::fs::metadata(&path).unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.load_alerts().await.unwrap().len(), 2_000);
    }
}
