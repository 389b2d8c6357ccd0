//! `tripline-lambda`: the Lambda runtime loop around `tripline::lambda::Handler`. Build with
//! `cargo lambda build --release --features lambda --bin tripline-lambda` (or a plain
//! `cargo build --features lambda` renamed to `bootstrap`); see docs/deploy.md.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::sync::Arc;
use tripline::lambda::{config_path, Handler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .init();
    // Loaded once per execution environment; a broken config fails the cold start loudly.
    let handler = Arc::new(Handler::load(config_path())?);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        async move {
            let summary = handler
                .handle_within(&ev.payload, Some(ev.context.deadline()))
                .await?;
            tracing::info!(summary = %serde_json::to_string(&summary)?, "cycle done");
            Ok::<_, Error>(serde_json::to_value(summary)?)
        }
    }))
    .await
}
