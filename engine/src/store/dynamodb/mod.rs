//! The DynamoDB store: the same `Store` contract as SQLite, for Lambda and for several replicas
//! sharing one state.
//!
//! # Layout (single table)
//!
//! One table with a string partition key `pk` and a string sort key `sk`. Each kind of record
//! lives under one partition key and is read with `Query` (paginated):
//!
//! | `pk`      | `sk`                       | other attributes                                   |
//! |-----------|----------------------------|----------------------------------------------------|
//! | `alert`   | fingerprint                | `state`, `ends_at` (epoch s), `body` (JSON)        |
//! | `meta`    | key                        | `value`                                            |
//! | `silence` | id                         | `body`                                             |
//! | `ack`     | fingerprint                | `body`                                             |
//! | `group`   | group key                  | `body`                                             |
//! | `nflog`   | group key `\u{1f}` receiver | `body`                                             |
//! | `outbox`  | notification id            | `receiver`, `state`, `next_attempt_at` (epoch ms), `seq`, `body` |
//! | `lock`    | `flush`                    | `owner`, `lease_until` (epoch ms, wall clock)      |
//! | `counter` | `outbox-seq`               | `n` (atomic counter for outbox order)              |
//!
//! # Where SQLite uses transactions
//!
//! * **A flush** (`flush_atomically`) runs in SQLite in one `IMMEDIATE` transaction so that two
//!   processes never both decide to send the same news. Here a *flush lease* stands in for it:
//!   a conditional `PutItem` on (`lock`, `flush`) with
//!   `attribute_not_exists(pk) OR lease_until < :now` and an expiry [`FLUSH_LEASE`] ahead. Only
//!   the holder reads alerts and pipeline state, plans and writes the commit; then it deletes
//!   the lease (conditionally on still owning it). Other replicas wait (up to [`FLUSH_WAIT`]) and
//!   then plan on the holder's written state, so they see its notification log and send nothing
//!   twice; still held after that, they skip this flush (`Flush::busy`) and go on delivering
//!   what is queued. A replica that dies holding the lease delays new notifications for at most
//!   [`FLUSH_LEASE`], never the delivery of queued ones.
//!   The commit is written in crash-safe order — outbox entries first (idempotent: the put is
//!   conditional on the id being new), then the notification log and timers — so a crash half
//!   way re-plans the same notifications, which land on the same outbox ids: a notification's id
//!   is derived from its receiver, group, the log entry it follows and its alerts, not from the
//!   instant of the flush (`pipeline::notification`). `TRIPLINE_FAILPOINTS` or
//!   [`DynamoStore::inject_fault`] stops a flush at these points for crash tests.
//! * **An outbox claim** (`outbox_claim`) is a conditional `UpdateItem`:
//!   `#state = pending AND next_attempt_at <= :at`, setting `next_attempt_at` and `lease_until`
//!   to the end of the send lease. Exactly one replica wins; the loser sees
//!   `ConditionalCheckFailedException`. A replica that dies mid-send leaves the entry pending
//!   with `next_attempt_at` = its lease end, so any replica takes it over once the lease lapses.
//! * **Saving alerts** is a series of `PutItem`/`DeleteItem` calls, not one transaction: each
//!   alert is written whole, and replicas evaluating the same rules write the same states.
//!
//! Only `GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `Query`, and (with
//! `create_table = true`) `CreateTable`/`DescribeTable` are called — see docs/deploy.md for the
//! IAM policy.

use super::{AlertStore, OutboxStore, PipelineStore};
use crate::alert::Alert;
use crate::aws::{classify, AwsConfig, Service};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::notify::outbox::{OutboxEntry, OutboxState};
use crate::pipeline::escalate::Ack;
use crate::pipeline::group::GroupState;
use crate::pipeline::nflog::NflogEntry;
use crate::pipeline::silence::Silence;
use crate::pipeline::{Flush, FlushCommit, NotifyState, PlanFn};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// How long one replica may hold the flush lease; a flush takes well under a second.
pub const FLUSH_LEASE: Duration = Duration::from_secs(30);
/// How long a flush waits for another replica's lease before it gives up for now
/// (`Flush::busy`): the holder plans the same alerts, and delivery goes on meanwhile.
pub const FLUSH_WAIT: Duration = Duration::from_secs(3);

const ALERT: &str = "alert";
const META: &str = "meta";
const SILENCE: &str = "silence";
const ACK: &str = "ack";
const GROUP: &str = "group";
const NFLOG: &str = "nflog";
const OUTBOX: &str = "outbox";
const LOCK: &str = "lock";
const COUNTER: &str = "counter";
const NFLOG_SEP: char = '\u{1f}';

pub struct DynamoStore {
    aws: AwsConfig,
    table: String,
    create_table: bool,
    client: tokio::sync::OnceCell<Client>,
    /// Identifies this process's flush leases.
    owner: String,
    /// Fault injection for crash tests (see `failpoint`).
    faults: std::sync::Mutex<Vec<(String, Fault)>>,
}

/// What an injected fault does when its point is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Ends the process on the spot, as a SIGKILL would (no unwinding, no lease released).
    Abort,
    /// Fails that write once with an error.
    Error,
}

/// The points a fault can be injected at: after a flush took the lease, and after it wrote
/// outbox entries (a flush that queues nothing does not reach it) but before the notification
/// log and timers.
pub const FAULT_POINTS: [&str; 2] = ["flush-after-lock", "flush-after-outbox"];

/// Faults named in `TRIPLINE_FAILPOINTS` (`point=abort|error`, comma-separated), for crash
/// tests of whole processes. Unset in production.
fn faults_from_env() -> Vec<(String, Fault)> {
    let Ok(v) = std::env::var("TRIPLINE_FAILPOINTS") else {
        return Vec::new();
    };
    v.split(',')
        .filter_map(|p| {
            let (name, what) = p.trim().split_once('=').unwrap_or((p.trim(), "error"));
            let fault = match what {
                "abort" => Fault::Abort,
                _ => Fault::Error,
            };
            FAULT_POINTS
                .contains(&name)
                .then(|| (name.to_string(), fault))
        })
        .collect()
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish()
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(|s| s.as_str())
}

fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|s| s.parse().ok())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Store(format!("encoding a record: {e}")))
}

fn body<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T> {
    let b = get_s(item, "body").ok_or_else(|| Error::Store("item without a body".into()))?;
    serde_json::from_str(b).map_err(|e| Error::Store(format!("decoding a record: {e}")))
}

fn err<E>(
    op: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::Store(format!("dynamodb {}", classify(op, e).message))
}

/// A conditional write's outcome: `true` written, `false` its condition did not hold (another
/// replica got there first, or the item is gone); any other failure is an error.
fn written<O, E>(
    op: &str,
    r: std::result::Result<
        O,
        aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >,
) -> Result<bool>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|se| se.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(err(op, &e)),
    }
}

impl DynamoStore {
    /// A store on `table`, using `aws` for region, endpoint and timeouts. Nothing is called until
    /// the first use; then the table is created if `create_table` and it does not exist yet.
    pub fn new(aws: &AwsConfig, table: impl Into<String>, create_table: bool) -> Result<Self> {
        aws.validate().map_err(Error::Config)?;
        let table = table.into();
        if table.is_empty() {
            return Err(Error::Config("store.table must not be empty".into()));
        }
        Ok(DynamoStore {
            aws: aws.clone(),
            table,
            create_table,
            client: tokio::sync::OnceCell::new(),
            owner: format!(
                "{}-{}-{:x}",
                hostname(),
                std::process::id(),
                rand::random::<u64>()
            ),
            faults: std::sync::Mutex::new(faults_from_env()),
        })
    }

    /// Arms a fault at `point` (one of [`FAULT_POINTS`]); an `Error` fires once.
    pub fn inject_fault(&self, point: &str, fault: Fault) {
        self.faults
            .lock()
            .expect("faults lock")
            .push((point.to_string(), fault));
    }

    fn failpoint(&self, point: &str) -> Result<()> {
        let mut f = self.faults.lock().expect("faults lock");
        let Some(i) = f.iter().position(|(p, _)| p == point) else {
            return Ok(());
        };
        match f[i].1 {
            Fault::Abort => {
                eprintln!("tripline: injected fault at {point}: aborting");
                std::process::abort()
            }
            Fault::Error => {
                f.remove(i);
                Err(Error::Store(format!("injected fault at {point}")))
            }
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn client(&self) -> Result<&Client> {
        self.client
            .get_or_try_init(|| async {
                let sdk = self
                    .aws
                    .sdk_config(Service::DynamoDb)
                    .await
                    .map_err(Error::Config)?;
                // The store has no outer retry loop: let the SDK retry throttling and 5xx.
                let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .retry_config(
                        aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(4),
                    )
                    .build();
                let client = Client::from_conf(conf);
                if self.create_table {
                    ensure_table(&client, &self.table).await?;
                }
                Ok::<Client, Error>(client)
            })
            .await
    }

    /// Every item under partition `pk`, in sort-key order.
    async fn query_all(&self, pk: &str) -> Result<Vec<Item>> {
        let c = self.client().await?;
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let resp = c
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| err("Query", &e))?;
            out.extend(resp.items().iter().cloned());
            match resp.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn bodies<T: serde::de::DeserializeOwned>(&self, pk: &str) -> Result<Vec<T>> {
        self.query_all(pk).await?.iter().map(body).collect()
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        let resp = self
            .client()
            .await?
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("GetItem", &e))?;
        Ok(resp.item().cloned())
    }

    async fn put(&self, mut item: Item, pk: &str, sk: &str) -> Result<()> {
        item.insert("pk".into(), s(pk));
        item.insert("sk".into(), s(sk));
        self.client()
            .await?
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| err("PutItem", &e))?;
        Ok(())
    }

    async fn put_body<T: serde::Serialize>(&self, pk: &str, sk: &str, v: &T) -> Result<()> {
        self.put(HashMap::from([("body".into(), s(to_json(v)?))]), pk, sk)
            .await
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<()> {
        self.client()
            .await?
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .send()
            .await
            .map_err(|e| err("DeleteItem", &e))?;
        Ok(())
    }

    async fn read_state(&self) -> Result<NotifyState> {
        let mut silences: Vec<Silence> = self.bodies(SILENCE).await?;
        silences.sort_by(|a, b| (a.ends_at, &a.id).cmp(&(b.ends_at, &b.id)));
        let acks: Vec<Ack> = self.bodies(ACK).await?;
        let groups: Vec<GroupState> = self.bodies(GROUP).await?;
        let mut nflog: Vec<NflogEntry> = self.bodies(NFLOG).await?;
        nflog.sort_by(|a, b| (&a.group_key, &a.receiver).cmp(&(&b.group_key, &b.receiver)));
        Ok(NotifyState {
            silences,
            acks,
            groups,
            nflog,
        })
    }

    /// Reserves `count` outbox sequence numbers; returns the first.
    async fn next_seq(&self, count: usize) -> Result<i64> {
        let resp = self
            .client()
            .await?
            .update_item()
            .table_name(&self.table)
            .key("pk", s(COUNTER))
            .key("sk", s("outbox-seq"))
            .update_expression("ADD #n :c")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":c", n(count as i64))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| err("UpdateItem", &e))?;
        let last = resp
            .attributes()
            .and_then(|a| get_n(a, "n"))
            .ok_or_else(|| Error::Store("outbox counter without a value".into()))?;
        Ok(last - count as i64 + 1)
    }

    async fn write_commit(&self, f: &FlushCommit) -> Result<()> {
        // Outbox first (see the module docs): a crash after this re-plans onto the same ids.
        if !f.notifications.is_empty() {
            let mut seq = self.next_seq(f.notifications.len()).await?;
            let c = self.client().await?;
            for note in &f.notifications {
                let e = OutboxEntry::new(note.clone());
                let r = c
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", s(OUTBOX))
                    .item("sk", s(&note.id))
                    .item("receiver", s(&note.receiver))
                    .item("state", s(OutboxState::Pending.as_str()))
                    .item("next_attempt_at", n(ms(e.next_attempt_at)))
                    .item("seq", n(seq))
                    .item("body", s(to_json(&e)?))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await;
                seq += 1;
                // Already there: a re-plan after a crash wrote the same id.
                written("PutItem", r)?;
            }
            self.failpoint("flush-after-outbox")?;
        }
        for e in &f.nflog {
            self.put_body(NFLOG, &nflog_key(&e.group_key, &e.receiver), e)
                .await?;
        }
        for g in &f.groups_saved {
            self.put_body(GROUP, &g.key, g).await?;
        }
        for k in &f.groups_deleted {
            self.delete(GROUP, k).await?;
        }
        for fp in &f.acks_announced {
            if let Some(item) = self.get(ACK, fp).await? {
                let mut a: Ack = body(&item)?;
                a.announced = true;
                self.put_body(ACK, fp, &a).await?;
            }
        }
        for (g, r) in &f.nflog_deleted {
            self.delete(NFLOG, &nflog_key(g, r)).await?;
        }
        for id in &f.silences_deleted {
            self.delete(SILENCE, id).await?;
        }
        for fp in &f.acks_deleted {
            self.delete(ACK, fp).await?;
        }
        for id in &f.silences_noticed {
            if let Some(item) = self.get(SILENCE, id).await? {
                let mut sl: Silence = body(&item)?;
                sl.expiry_noticed = true;
                self.put_body(SILENCE, id, &sl).await?;
            }
        }
        Ok(())
    }

    /// Takes the flush lease, waiting for another holder up to `FLUSH_WAIT`; false if it is
    /// still held then.
    async fn lock_flush(&self) -> Result<bool> {
        let c = self.client().await?;
        let give_up = std::time::Instant::now() + FLUSH_WAIT;
        let mut pause = Duration::from_millis(50);
        loop {
            let now = wall_ms();
            let r = c
                .put_item()
                .table_name(&self.table)
                .item("pk", s(LOCK))
                .item("sk", s("flush"))
                .item("owner", s(&self.owner))
                .item("lease_until", n(now + FLUSH_LEASE.as_millis() as i64))
                .condition_expression("attribute_not_exists(pk) OR lease_until < :now OR #o = :me")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":me", s(&self.owner))
                .send()
                .await;
            if written("PutItem", r)? {
                return Ok(true);
            }
            if std::time::Instant::now() >= give_up {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    async fn unlock_flush(&self) -> Result<()> {
        let r = self
            .client()
            .await?
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(LOCK))
            .key("sk", s("flush"))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(&self.owner))
            .send()
            .await;
        // Not written: our lease lapsed and another replica holds it now, nothing of ours to
        // release.
        written("DeleteItem", r).map(|_| ())
    }

    async fn outbox_items(&self) -> Result<Vec<(i64, OutboxEntry, String, String)>> {
        let mut v = Vec::new();
        for item in self.query_all(OUTBOX).await? {
            let mut e: OutboxEntry = body(&item)?;
            // The attribute is authoritative: claims and defers move it without rewriting bodies.
            if let Some(t) =
                get_n(&item, "next_attempt_at").and_then(chrono::DateTime::from_timestamp_millis)
            {
                e.next_attempt_at = t;
            }
            let state = get_s(&item, "state").unwrap_or_default().to_string();
            let receiver = get_s(&item, "receiver").unwrap_or_default().to_string();
            v.push((get_n(&item, "seq").unwrap_or(0), e, state, receiver));
        }
        v.sort_by_key(|(seq, e, ..)| (*seq, e.notification.id.clone()));
        Ok(v)
    }
}

fn nflog_key(group: &str, receiver: &str) -> String {
    format!("{group}{NFLOG_SEP}{receiver}")
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "tripline".into())
}

async fn ensure_table(c: &Client, table: &str) -> Result<()> {
    let exists = match c.describe_table().table_name(table).send().await {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_not_found_exception()) =>
        {
            false
        }
        Err(e) => return Err(err("DescribeTable", &e)),
    };
    if !exists {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| Error::Store(e.to_string()))
        };
        let key = |name: &str, kt: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kt)
                .build()
                .map_err(|e| Error::Store(e.to_string()))
        };
        let r = c
            .create_table()
            .table_name(table)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match r {
            Ok(_) => {}
            // Another replica created it first.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_in_use_exception()) => {}
            Err(e) => return Err(err("CreateTable", &e)),
        }
    }
    // Wait until the table is ACTIVE (real DynamoDB takes seconds; moto is instant).
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let d = c
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| err("DescribeTable", &e))?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        if std::time::Instant::now() >= give_up {
            return Err(Error::Store(format!(
                "dynamodb table {table} is not ACTIVE after 60s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[async_trait]
impl AlertStore for DynamoStore {
    async fn load_alerts(&self) -> Result<Vec<Alert>> {
        let mut v: Vec<Alert> = self.bodies(ALERT).await?;
        v.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        Ok(v)
    }

    async fn save_alerts(&self, changed: &[Alert], deleted: &[String]) -> Result<()> {
        for a in changed {
            let mut item = HashMap::from([
                ("instance".to_string(), s(&a.instance)),
                ("state".to_string(), s(a.state.as_str())),
                ("body".to_string(), s(to_json(a)?)),
            ]);
            if let Some(e) = a.ends_at {
                item.insert("ends_at".into(), n(e.timestamp()));
            }
            self.put(item, ALERT, &a.fingerprint).await?;
        }
        for fp in deleted {
            self.delete(ALERT, fp).await?;
        }
        Ok(())
    }

    async fn prune_resolved(&self, before: Timestamp) -> Result<usize> {
        let mut count = 0;
        for item in self.query_all(ALERT).await? {
            let resolved = get_s(&item, "state") == Some("resolved");
            let ended = get_n(&item, "ends_at").is_some_and(|e| e < before.timestamp());
            if resolved && ended {
                if let Some(sk) = get_s(&item, "sk") {
                    self.delete(ALERT, sk).await?;
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .get(META, key)
            .await?
            .and_then(|i| get_s(&i, "value").map(str::to_string)))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.put(HashMap::from([("value".into(), s(value))]), META, key)
            .await
    }
}

#[async_trait]
impl PipelineStore for DynamoStore {
    async fn add_silence(&self, sl: &Silence) -> Result<()> {
        self.put_body(SILENCE, &sl.id, sl).await
    }

    async fn list_silences(&self) -> Result<Vec<Silence>> {
        Ok(self.read_state().await?.silences)
    }

    async fn expire_silence(&self, id: &str, at: Timestamp) -> Result<bool> {
        let Some(item) = self.get(SILENCE, id).await? else {
            return Ok(false);
        };
        let mut sl: Silence = body(&item)?;
        if sl.ends_at > at {
            sl.ends_at = at.max(sl.starts_at);
            self.put_body(SILENCE, id, &sl).await?;
        }
        Ok(true)
    }

    async fn ack(&self, a: &Ack) -> Result<()> {
        self.put_body(ACK, &a.fingerprint, a).await
    }

    async fn load_notify_state(&self) -> Result<NotifyState> {
        self.read_state().await
    }

    async fn commit_flush(&self, commit: &FlushCommit) -> Result<()> {
        if !self.lock_flush().await? {
            return Err(Error::Store(format!(
                "dynamodb table {}: another replica has held the flush lease for over {}s",
                self.table,
                FLUSH_WAIT.as_secs()
            )));
        }
        self.failpoint("flush-after-lock")?;
        let r = self.write_commit(commit).await;
        let u = self.unlock_flush().await;
        r.and(u)
    }

    async fn flush_atomically(&self, plan: &PlanFn) -> Result<Flush> {
        if !self.lock_flush().await? {
            tracing::debug!(table = %self.table, "another replica holds the flush lease; not flushing now");
            return Ok(Flush {
                busy: true,
                ..Default::default()
            });
        }
        let r = async {
            self.failpoint("flush-after-lock")?;
            let alerts = self.load_alerts().await?;
            let state = self.read_state().await?;
            let flush = plan(&alerts, &state);
            self.write_commit(&flush.commit).await?;
            Ok::<Flush, Error>(flush)
        }
        .await;
        let u = self.unlock_flush().await;
        match (r, u) {
            (Ok(f), Ok(())) => Ok(f),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    }
}

#[async_trait]
impl OutboxStore for DynamoStore {
    async fn outbox_due(&self, at: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .outbox_items()
            .await?
            .into_iter()
            .filter(|(_, e, st, _)| st == "pending" && e.next_attempt_at <= at)
            .map(|(_, e, ..)| e)
            .take(limit)
            .collect())
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .outbox_items()
            .await?
            .into_iter()
            .filter(|(_, _, st, _)| st == "pending")
            .map(|(_, e, ..)| e)
            .take(limit)
            .collect())
    }

    async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .outbox_items()
            .await?
            .into_iter()
            .map(|(_, e, ..)| e)
            .collect())
    }

    async fn outbox_next_due(&self) -> Result<Option<Timestamp>> {
        Ok(self
            .outbox_items()
            .await?
            .into_iter()
            .filter(|(_, _, st, _)| st == "pending")
            .map(|(_, e, ..)| e.next_attempt_at)
            .min())
    }

    async fn outbox_update(&self, e: &OutboxEntry) -> Result<()> {
        let r = self
            .client()
            .await?
            .update_item()
            .table_name(&self.table)
            .key("pk", s(OUTBOX))
            .key("sk", s(&e.notification.id))
            .update_expression(
                "SET #st = :st, next_attempt_at = :next, body = :body REMOVE lease_until",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":st", s(e.state.as_str()))
            .expression_attribute_values(":next", n(ms(e.next_attempt_at)))
            .expression_attribute_values(":body", s(to_json(e)?))
            .send()
            .await;
        // Not written: like SQLite's UPDATE of a missing row, nothing to do.
        written("UpdateItem", r).map(|_| ())
    }

    async fn outbox_claim(&self, id: &str, at: Timestamp, until: Timestamp) -> Result<bool> {
        // `next_attempt_at` doubles as the lease: a claimed entry is not due again until the
        // lease ends, so a replica that died holding it hands it over then.
        let r = self
            .client()
            .await?
            .update_item()
            .table_name(&self.table)
            .key("pk", s(OUTBOX))
            .key("sk", s(id))
            .update_expression("SET next_attempt_at = :until, lease_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND #st = :pending AND next_attempt_at <= :at AND (attribute_not_exists(lease_until) OR lease_until <= :at)",
            )
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":pending", s(OutboxState::Pending.as_str()))
            .expression_attribute_values(":at", n(ms(at)))
            .expression_attribute_values(":until", n(ms(until)))
            .send()
            .await;
        written("UpdateItem", r)
    }

    async fn outbox_defer(&self, receiver: &str, until: Timestamp) -> Result<()> {
        let c = self.client().await?;
        for (_, e, st, rcv) in self.outbox_items().await? {
            if st != "pending" || rcv != receiver || e.next_attempt_at >= until {
                continue;
            }
            let r = c
                .update_item()
                .table_name(&self.table)
                .key("pk", s(OUTBOX))
                .key("sk", s(&e.notification.id))
                .update_expression("SET next_attempt_at = :until")
                .condition_expression("#st = :pending AND next_attempt_at < :until")
                .expression_attribute_names("#st", "state")
                .expression_attribute_values(":pending", s(OutboxState::Pending.as_str()))
                .expression_attribute_values(":until", n(ms(until)))
                .send()
                .await;
            // Not written: claimed, delivered or already deferred further meanwhile.
            written("UpdateItem", r)?;
        }
        Ok(())
    }

    async fn prune_outbox(&self, before: Timestamp) -> Result<usize> {
        let mut count = 0;
        for (_, e, st, _) in self.outbox_items().await? {
            let done = st == OutboxState::Delivered.as_str() || st == OutboxState::Dead.as_str();
            if done && e.next_attempt_at < before {
                self.delete(OUTBOX, &e.notification.id).await?;
                count += 1;
            }
        }
        Ok(count)
    }
}
