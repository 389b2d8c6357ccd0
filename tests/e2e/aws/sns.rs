//! What SNS itself accepts: a notification far over 256 KB (moto enforces the limit), and FIFO
//! topics, which require a message group.

use super::faults::notification;
use super::{aws_config, test_credentials_in_env, Seeder};
use crate::support::moto::Moto;
use serde_json::{json, Value};
use tripline::notify::sns::SnsNotifier;
use tripline::notify::Notifier;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_of_triage_details_is_cut_to_what_sns_accepts_keeping_the_runbook() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let arn = Seeder::new(&moto).await.topic("big").await;
    let mut n = notification();
    std::sync::Arc::make_mut(&mut n.alerts[0]).details.insert(
        "log_lines".into(),
        Value::Array(
            (0..10_000)
                .map(|i| json!(format!("{i:05} ERROR {}", "x".repeat(100))))
                .collect(),
        ),
    );
    let sns = SnsNotifier::new("ops", arn, &aws_config(&moto)).unwrap();
    sns.notify(&n).await.expect("SNS accepts the cut message");
    let sent = moto.sns_messages("big");
    assert_eq!(sent.len(), 1);
    let message = sent[0][1].as_str().unwrap();
    assert!(
        message.len() <= 262_144 && message.len() > 200_000,
        "{}",
        message.len()
    );
    let m: Value = serde_json::from_str(message).unwrap();
    assert!(m["default"]
        .as_str()
        .unwrap()
        .contains("Runbook: https://runbooks.example.com/aws/lambda-errors\n"));
    let body: Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(body["truncated"], true);
    assert_eq!(
        body["alerts"][0]["runbook"],
        "https://runbooks.example.com/aws/lambda-errors"
    );
    assert_eq!(
        sent[0][3]["runbook"]["Value"],
        "https://runbooks.example.com/aws/lambda-errors"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_topics_get_a_message_group_and_deduplication_id() {
    let Some(moto) = Moto::start() else { return };
    test_credentials_in_env();
    let seed = Seeder::new(&moto).await;
    let out = seed
        .sns
        .create_topic()
        .name("ops.fifo")
        .attributes("FifoTopic", "true")
        .attributes("ContentBasedDeduplication", "false")
        .send()
        .await
        .unwrap();
    let sns = SnsNotifier::new("ops", out.topic_arn().unwrap(), &aws_config(&moto)).unwrap();
    sns.notify(&notification())
        .await
        .expect("published to a FIFO topic");
    let sent = moto.sns_messages("ops.fifo");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][4], "g", "the group key is the message group");
}
