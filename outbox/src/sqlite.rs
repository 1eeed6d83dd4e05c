//! The embedded store: one SQLite file (bundled SQLite, WAL), created owner-only.

use crate::{Claimed, OutboxError, Row, State, Stats, Store, StoredEvent};
use freight::model::ServerEvent;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS destinations (
    key TEXT PRIMARY KEY,
    paused_until INTEGER,
    pause_reason TEXT,
    throttled_until INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    dest_key TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_id TEXT,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    lease_owner TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- The wire JSON (about 1.3 KB an event) lives apart, so that state changes rewrite small rows.
CREATE TABLE IF NOT EXISTS bodies (
    id INTEGER PRIMARY KEY,
    wire TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_once
    ON events(dest_key, event_name, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_due ON events(state, dest_key, next_attempt_at);
CREATE INDEX IF NOT EXISTS events_claim ON events(dest_key, state, id);
";

/// The layout of the file this version writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// Creates the tables of a new file, or checks that an existing file has this version's
/// layout: another layout would make inserts fail or, worse, be ignored, and stored rows be
/// unreadable.
fn migrate(conn: &mut Connection) -> Result<(), OutboxError> {
    // IMMEDIATE: two processes opening a new file at once do not both create it.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = tx.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    match version {
        SCHEMA_VERSION => {}
        0 if tables == 0 => {
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        // A file of the first releases, before the version was recorded: its layout decides.
        0 if has_current_layout(&tx)? => {
            tx.execute_batch(SCHEMA)?; // the indexes, if any is missing
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        0 => {
            return Err(OutboxError(
                "this file is not an outbox of this version of Freight (another layout): \
                 deliver its events with the version that wrote it, or move it aside"
                    .into(),
            ))
        }
        v => {
            return Err(OutboxError(format!(
                "this outbox was written by another version of Freight (layout {v}; this \
                 version reads layout {SCHEMA_VERSION}): use that version"
            )))
        }
    }
    tx.commit()?;
    Ok(())
}

/// Whether the tables are exactly this version's (names and columns).
fn has_current_layout(tx: &rusqlite::Transaction<'_>) -> Result<bool, OutboxError> {
    let expected: &[(&str, &[&str])] = &[
        ("bodies", &["id", "wire"]),
        (
            "destinations",
            &["key", "paused_until", "pause_reason", "throttled_until"],
        ),
        (
            "events",
            &[
                "id",
                "dest_key",
                "event_name",
                "event_id",
                "expires_at",
                "state",
                "attempts",
                "next_attempt_at",
                "lease_until",
                "lease_owner",
                "last_error",
                "created_at",
                "updated_at",
            ],
        ),
    ];
    let mut names: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names.retain(|n| !n.starts_with("sqlite_"));
    if names != expected.iter().map(|(t, _)| *t).collect::<Vec<_>>() {
        return Ok(false);
    }
    for (table, columns) in expected {
        let found: Vec<String> = tx
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if found != *columns {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An outbox in one SQLite file. Several processes may open the same file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens or creates the file (mode 0600 on Unix), in WAL mode with a busy timeout.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<SqliteStore, OutboxError> {
        let path = path.as_ref();
        // Names SQLite gives a meaning of its own: a database in memory or a temporary one,
        // which would keep nothing. (URIs are not read: `file:x.db` is a file of that name.)
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Err(OutboxError(
                "the outbox needs a file path (not empty, not :memory:): it must survive a \
                 restart"
                    .into(),
            ));
        }
        // An absolute path: SQLite reads a name that starts with `file:` as a URI (its bundled
        // build enables URIs whatever the open flags), which could name another database.
        let path = &std::path::absolute(path)
            .map_err(|e| OutboxError(format!("cannot resolve {}: {e}", path.display())))?;
        if !path.exists() && path.symlink_metadata().is_ok() {
            // A link to a missing file: SQLite would create the target with the default
            // mode (world-readable), not owner-only.
            return Err(OutboxError(format!(
                "{} is a symbolic link to a missing file: create the outbox at the link's \
                 target, or remove the link",
                path.display()
            )));
        }
        if !path.exists() {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(OutboxError(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        // Without SQLITE_OPEN_URI (which `Connection::open` sets) too: the file created
        // above, owner-only, is the one opened.
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: an enqueue that returned is on disk, through a power cut too (NORMAL in WAL
        // mode may lose the last transactions then).
        conn.pragma_update(None, "synchronous", "FULL")?;
        let mut conn = conn;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `sql` (`?1` a time, `?2` the id, `?3` the owner, `?4` a text) for each of `ids`
    /// still pending and claimed by `owner`.
    fn set_state(
        &self,
        ids: &[i64],
        sql: &str,
        now: i64,
        owner: &str,
        text: Option<&str>,
    ) -> Result<(), OutboxError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let sql = format!("{sql} WHERE id = ?2 AND lease_owner = ?3 AND state = 'pending'");
            let mut stmt = tx.prepare(&sql)?;
            for id in ids {
                match text {
                    Some(t) => stmt.execute(params![now, id, owner, t])?,
                    None => stmt.execute(params![now, id, owner])?,
                };
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn insert(
        &self,
        dest_key: &str,
        events: &[(ServerEvent, i64)],
        now: i64,
    ) -> Result<usize, OutboxError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut stored = 0;
        {
            let mut stmt = tx.prepare(
                // Only a stored (destination, event_name, event_id) is ignored: any other
                // constraint fails the call (OR IGNORE would drop the event silently).
                "INSERT INTO events
                 (dest_key, event_name, event_id, expires_at, next_attempt_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)
                 ON CONFLICT (dest_key, event_name, event_id) WHERE event_id IS NOT NULL DO NOTHING",
            )?;
            let mut body = tx.prepare("INSERT INTO bodies (id, wire) VALUES (?1, ?2)")?;
            for (event, expires) in events {
                let n = stmt.execute(params![
                    dest_key,
                    event.event_name,
                    event.event_id,
                    expires,
                    now
                ])?;
                if n == 1 {
                    let wire = serde_json::to_string(event)
                        .map_err(|e| OutboxError(format!("cannot store an event: {e}")))?;
                    body.execute(params![tx.last_insert_rowid(), wire])?;
                    stored += 1;
                }
            }
        }
        tx.commit()?;
        Ok(stored)
    }

    fn expire(&self, now: i64) -> Result<usize, OutboxError> {
        Ok(self.conn().execute(
            "UPDATE events SET state = 'expired', updated_at = ?1
             WHERE state = 'pending' AND expires_at <= ?1
               AND (lease_until IS NULL OR lease_until <= ?1)",
            params![now],
        )?)
    }

    fn due_destinations(&self, now: i64) -> Result<Vec<String>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT DISTINCT e.dest_key FROM events e
             LEFT JOIN destinations d ON d.key = e.dest_key
             WHERE e.state = 'pending' AND e.next_attempt_at <= ?1
               AND (e.lease_until IS NULL OR e.lease_until <= ?1)
               AND (d.paused_until IS NULL OR d.paused_until <= ?1)
               AND (d.throttled_until IS NULL OR d.throttled_until <= ?1)
             ORDER BY e.dest_key",
        )?;
        let keys = stmt
            .query_map(params![now], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(keys)
    }

    fn claim(
        &self,
        dest_key: &str,
        limit: usize,
        now: i64,
        lease_secs: i64,
        owner: &str,
    ) -> Result<Claimed, OutboxError> {
        let mut conn = self.conn();
        // BEGIN IMMEDIATE takes the write lock first: two flushers cannot claim the same rows.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows = {
            let mut stmt = tx.prepare(
                "UPDATE events SET lease_until = ?1, lease_owner = ?2, attempts = attempts + 1,
                        updated_at = ?3
                 WHERE id IN (SELECT id FROM events
                              WHERE dest_key = ?4 AND state = 'pending' AND next_attempt_at <= ?3
                                AND (lease_until IS NULL OR lease_until <= ?3)
                              ORDER BY id LIMIT ?5)
                 RETURNING id, attempts",
            )?;
            let claimed = stmt
                .query_map(
                    params![
                        now.saturating_add(lease_secs),
                        owner,
                        now,
                        dest_key,
                        limit as i64
                    ],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = tx.prepare("SELECT wire FROM bodies WHERE id = ?1")?;
            let mut unreadable = tx.prepare(
                "UPDATE events SET state = 'failed', last_error = ?2, lease_until = NULL,
                        lease_owner = NULL, updated_at = ?3 WHERE id = ?1",
            )?;
            let mut rows = Vec::with_capacity(claimed.len());
            let mut failed = 0;
            for (id, attempts) in claimed {
                // A row this version cannot read (no body, or written by another version)
                // fails alone, with the reason, instead of stopping every flush at it.
                let wire: Option<String> = body.query_row(params![id], |r| r.get(0)).optional()?;
                let event = match wire.map(|w| serde_json::from_str::<ServerEvent>(&w)) {
                    Some(Ok(event)) => event,
                    Some(Err(e)) => {
                        let why = format!("the stored event cannot be read: {e}");
                        unreadable.execute(params![id, why, now])?;
                        failed += 1;
                        continue;
                    }
                    None => {
                        unreadable.execute(params![id, "the stored event is missing", now])?;
                        failed += 1;
                        continue;
                    }
                };
                rows.push(Row {
                    id,
                    dest_key: dest_key.to_owned(),
                    event,
                    attempts: (attempts - 1).max(0) as u32,
                });
            }
            (rows, failed)
        };
        tx.commit()?;
        let (mut rows, unreadable) = rows;
        rows.sort_by_key(|r| r.id);
        Ok(Claimed { rows, unreadable })
    }

    fn delivered(&self, ids: &[i64], now: i64, owner: &str) -> Result<(), OutboxError> {
        self.set_state(
            ids,
            "UPDATE events SET state = 'delivered', lease_until = NULL, lease_owner = NULL,
                    updated_at = ?1",
            now,
            owner,
            None,
        )
    }

    fn failed(&self, ids: &[i64], error: &str, now: i64, owner: &str) -> Result<(), OutboxError> {
        self.set_state(
            ids,
            "UPDATE events SET state = 'failed', last_error = ?4, lease_until = NULL,
                    lease_owner = NULL, updated_at = ?1",
            now,
            owner,
            Some(error),
        )
    }

    fn release(&self, ids: &[i64], at: i64, owner: &str) -> Result<(), OutboxError> {
        self.set_state(
            ids,
            "UPDATE events SET next_attempt_at = ?1, updated_at = ?1, lease_until = NULL,
                    lease_owner = NULL",
            at,
            owner,
            None,
        )
    }

    fn unclaim(&self, ids: &[i64], at: i64, owner: &str) -> Result<(), OutboxError> {
        self.set_state(
            ids,
            "UPDATE events SET next_attempt_at = ?1, updated_at = ?1, lease_until = NULL,
                    lease_owner = NULL, attempts = max(attempts - 1, 0)",
            at,
            owner,
            None,
        )
    }

    fn pause(&self, dest_key: &str, reason: &str, until: i64) -> Result<(), OutboxError> {
        self.conn().execute(
            "INSERT INTO destinations (key, paused_until, pause_reason) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET paused_until = ?2, pause_reason = ?3",
            params![dest_key, until, reason],
        )?;
        Ok(())
    }

    fn throttle(&self, dest_key: &str, until: i64) -> Result<(), OutboxError> {
        self.conn().execute(
            "INSERT INTO destinations (key, throttled_until) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET throttled_until = ?2",
            params![dest_key, until],
        )?;
        Ok(())
    }

    fn resume(&self, dest_key: &str) -> Result<bool, OutboxError> {
        let changed = self.conn().execute(
            "UPDATE destinations SET paused_until = NULL, pause_reason = NULL, throttled_until = NULL
             WHERE key = ?1 AND (paused_until IS NOT NULL OR throttled_until IS NOT NULL)",
            params![dest_key],
        )?;
        Ok(changed > 0)
    }

    fn requeue(
        &self,
        dest_key: Option<&str>,
        expired: bool,
        now: i64,
    ) -> Result<usize, OutboxError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = tx.execute(
            "UPDATE events SET state = 'pending', attempts = 0, next_attempt_at = ?1,
                    last_error = NULL, updated_at = ?1
             WHERE state = 'failed' AND (?2 IS NULL OR dest_key = ?2)",
            params![now, dest_key],
        )?;
        if expired {
            // An expired event was given up an hour before Meta's window closes: it gets that
            // hour back (its expiry becomes the window's end), and only if the window is still
            // open; past it, Meta would refuse the event.
            // NULL (never re-queued) for a row whose body is missing or not JSON.
            let window_end = format!(
                "(SELECT CASE WHEN json_valid(b.wire) THEN
                         json_extract(b.wire, '$.event_time') +
                         CASE json_extract(b.wire, '$.action_source')
                              WHEN 'physical_store' THEN {store} ELSE {other} END
                         - {margin} END
                  FROM bodies b WHERE b.id = events.id)",
                store = crate::STORE_WINDOW_DAYS * 86_400,
                other = crate::WINDOW_DAYS * 86_400,
                margin = crate::REQUEUE_MARGIN_SECS,
            );
            n += tx.execute(
                &format!(
                    "UPDATE events SET state = 'pending', attempts = 0, next_attempt_at = ?1,
                            last_error = NULL, updated_at = ?1, expires_at = {window_end}
                     WHERE state = 'expired' AND (?2 IS NULL OR dest_key = ?2)
                       AND {window_end} > ?1"
                ),
                params![now, dest_key],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    fn prune(&self, before: i64) -> Result<usize, OutboxError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM bodies WHERE id IN
             (SELECT id FROM events WHERE state = 'delivered' AND updated_at < ?1)",
            params![before],
        )?;
        let n = tx.execute(
            "DELETE FROM events WHERE state = 'delivered' AND updated_at < ?1",
            params![before],
        )?;
        tx.commit()?;
        Ok(n)
    }

    fn stats(&self, now: i64) -> Result<Stats, OutboxError> {
        let conn = self.conn();
        let mut stats = Stats::default();
        let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM events GROUP BY state")?;
        let counts = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for c in counts {
            let (state, n) = c?;
            let n = n as u64;
            match state.as_str() {
                "pending" => stats.pending = n,
                "delivered" => stats.delivered = n,
                "failed" => stats.failed = n,
                "expired" => stats.expired = n,
                _ => {}
            }
        }
        let mut stmt = conn.prepare(
            "SELECT key, COALESCE(pause_reason, ''), paused_until FROM destinations
             WHERE paused_until > ?1 ORDER BY key",
        )?;
        stats.paused = stmt
            .query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(stats)
    }

    fn list(&self, state: State, limit: usize) -> Result<Vec<StoredEvent>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT e.id, e.dest_key, e.attempts, e.last_error, b.wire
             FROM events e LEFT JOIN bodies b ON b.id = e.id
             WHERE e.state = ?1 ORDER BY e.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![state.as_str(), limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, dest_key, attempts, last_error, wire) = row?;
            // A row whose event cannot be read is listed without it (`last_error` says why).
            let event = wire.and_then(|w| serde_json::from_str(&w).ok());
            out.push(StoredEvent {
                id,
                dest_key,
                state,
                attempts: attempts.max(0) as u32,
                last_error,
                event,
            });
        }
        Ok(out)
    }
}
