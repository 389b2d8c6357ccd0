//! The contract of a receiver kind. Each receiver folder (`notify/<kind>/`) exports its config
//! struct (the options of a `[[receiver]]` table of `type = "<kind>"`) and implements
//! [`ReceiverKind`] on it: its name and secrets, how it is built into a [`Notifier`], and what
//! `tripline notify-preview` shows. `config/receiver.rs` lists the kinds, once; nothing else in
//! the engine names one.

use super::{Notification, Notifier};
use std::sync::Arc;

/// What building a receiver may need beyond its own table.
pub struct BuildContext<'a> {
    /// The `[aws]` table (defaults when absent): region, endpoint, timeouts (SNS).
    pub aws: &'a crate::aws::AwsConfig,
}

/// What `notify-preview` prints for one notification.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    /// Printed as is (the console receiver's text).
    Text(String),
    /// Printed as pretty JSON: the request body (or bodies) delivery would send.
    Json(serde_json::Value),
}

/// One kind of receiver, implemented by its config struct.
pub trait ReceiverKind {
    /// The receiver's name, used by routes.
    fn name(&self) -> &str;

    /// Whether resolved alerts are announced to this receiver.
    fn send_resolved(&self) -> bool {
        true
    }

    /// The environment variables holding this receiver's secrets (checked by `tripline check`;
    /// when unset there, a console stand-in takes the receiver's place).
    fn secret_env_vars(&self) -> Vec<&str> {
        vec![]
    }

    /// Whether the receiver calls AWS (and so needs a region and credentials).
    fn uses_aws(&self) -> bool {
        false
    }

    /// The receiver, ready to deliver. Secrets are read from the environment here; errors name
    /// the variable or option, never a secret's value.
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Notifier>, String>;

    /// What delivering `n` would send, rendered exactly as delivery renders it, secrets
    /// (routing keys, API keys) shown as `***`.
    fn preview(&self, n: &Notification) -> Preview;
}
