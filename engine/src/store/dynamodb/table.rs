//! Creating the store's table (`create_table = true`): `pk`/`sk` string keys, on-demand billing,
//! and waiting until DynamoDB reports it `ACTIVE`. Another replica creating it first is fine.

use super::err;
use crate::error::{Error, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;
use std::time::Duration;

pub(super) async fn ensure_table(c: &Client, table: &str) -> Result<()> {
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
