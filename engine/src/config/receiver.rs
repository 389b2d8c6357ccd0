//! The `[[receiver]]` tables: one enum over the receiver kinds, each variant wrapping the config
//! struct that the kind's folder in `notify/` exports, declared from the one list of kinds
//! (`crate::notify::kind::receiver_kinds!`): a new receiver is its folder plus one line there.
//! Everything else (building, secrets, `send_resolved`, previews) goes through
//! [`ReceiverKind`]; config-schema takes each kind's description from its struct's doc comment.

use crate::notify::{self, ReceiverKind};
use serde::Deserialize;

/// Declares `ReceiverConfig` with one newtype variant per kind (`type = "<variant, lowercased>"`)
/// and `ReceiverConfig::kind`, which hands out the variant's config as a `ReceiverKind`.
macro_rules! receiver_config {
    ($($module:ident::$config:ident => $variant:ident,)+) => {
        /// A `[[receiver]]` table; `type` says which kind it is.
        #[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
        #[serde(tag = "type", rename_all = "lowercase")]
        pub enum ReceiverConfig {
            $($variant(notify::$module::$config),)+
        }

        impl ReceiverConfig {
            /// The kind's own view of its table.
            pub fn kind(&self) -> &dyn ReceiverKind {
                match self {
                    $(ReceiverConfig::$variant(c) => c,)+
                }
            }
        }
    };
}

impl ReceiverConfig {
    /// The receiver's name, used by routes.
    pub fn name(&self) -> &str {
        self.kind().name()
    }

    /// The environment variables holding this receiver's secrets.
    pub fn secret_env_vars(&self) -> Vec<&str> {
        self.kind().secret_env_vars()
    }

    /// Whether resolved alerts are announced to this receiver.
    pub fn send_resolved(&self) -> bool {
        self.kind().send_resolved()
    }
}

notify::kind::receiver_kinds!(receiver_config);
