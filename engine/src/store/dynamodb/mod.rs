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
//! # Files, by record family
//!
//! `mod.rs` (this file: the client, item helpers, fault injection), `table.rs` (creating the
//! table), `alerts.rs` (`alert` and `meta`: `AlertStore`), `pipeline.rs` (`silence`, `ack`,
//! `group`, `nflog`, the flush lease and the commit: `PipelineStore`) and `outbox.rs` (`outbox`:
//! `OutboxStore`).
//!
//! Only `GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `Query`, and (with
//! `create_table = true`) `CreateTable`/`DescribeTable` are called — see docs/deploy.md for the
//! IAM policy.

mod alerts;
mod outbox;
mod pipeline;
mod table;

use crate::aws::{classify, AwsConfig, Service};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
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
                    table::ensure_table(&client, &self.table).await?;
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
        self.put_item()
            .await?
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
        self.delete_item(pk, sk)
            .await?
            .send()
            .await
            .map_err(|e| err("DeleteItem", &e))?;
        Ok(())
    }

    /// A `PutItem` on the store's table; the caller sets the item (keys included).
    async fn put_item(&self) -> Result<PutItemFluentBuilder> {
        Ok(self.client().await?.put_item().table_name(&self.table))
    }

    /// An `UpdateItem` of the item (`pk`, `sk`); the caller sets the expressions.
    async fn update_item(&self, pk: &str, sk: &str) -> Result<UpdateItemFluentBuilder> {
        Ok(self
            .client()
            .await?
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk)))
    }

    /// A `DeleteItem` of the item (`pk`, `sk`); the caller may add a condition.
    async fn delete_item(&self, pk: &str, sk: &str) -> Result<DeleteItemFluentBuilder> {
        Ok(self
            .client()
            .await?
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk)))
    }
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
