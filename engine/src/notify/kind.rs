//! The contract of a receiver kind, and the list of the kinds. Each receiver folder
//! (`notify/<kind>/`) exports its config struct (the options of a `[[receiver]]` table of
//! `type = "<kind>"`) and implements [`ReceiverKind`] on it: its name and secrets, how it is
//! built into a [`Notifier`], and what `tripline notify-preview` shows. `receiver_kinds!` at
//! the bottom names every kind, once: it declares the folders' modules (in `notify/mod.rs`) and
//! the variants of `config::ReceiverConfig` (in `config/receiver.rs`). A new receiver is its
//! folder plus one line there; nothing else in the engine names a kind.

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

/// The receiver kinds, one line each: `folder::ConfigStruct => Variant` (`type = "<variant,
/// lowercased>"`). Hands the list to the macro `$then`, which declares from it what it needs:
/// `notify/mod.rs` the folders' modules, `config/receiver.rs` the `ReceiverConfig` enum.
macro_rules! receiver_kinds {
    ($then:ident) => {
        $then! {
            console::ConsoleConfig => Console,
            sns::SnsConfig => Sns,
            slack::SlackConfig => Slack,
            pagerduty::PagerdutyConfig => Pagerduty,
            webhook::WebhookConfig => Webhook,
            opsgenie::OpsgenieConfig => Opsgenie,
            teams::TeamsConfig => Teams,
        }
    };
}
pub(crate) use receiver_kinds;
