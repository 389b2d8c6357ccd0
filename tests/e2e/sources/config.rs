//! The four sources from a config file: accepted shapes, and the mistakes reported with their
//! location.

use std::path::Path;
use tripline::assembly as wire;
use tripline::config::Config;

fn build(sources: &str) -> Result<(), String> {
    let text = format!("stock_rules = false\n\n[store]\ntype = \"memory\"\n\n{sources}");
    let cfg = Config::parse(Path::new("t.toml"), text).map_err(|e| e.to_string())?;
    wire::build(&cfg, Default::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn every_source_type_is_accepted_under_its_kind() {
    build(
        r#"
[sources.prometheus]
type = "prometheus"
url = "http://127.0.0.1:9090"
timeout = "5s"
headers_env = { Authorization = "PROMETHEUS_AUTH" }

[sources.http_probe]
type = "http"
timeout = "2s"

[sources.sql]
type = "postgres"
dsn_env = "TRIPLINE_PG_DSN"
statement_timeout = "3s"
connect_timeout = "1s"
max_connections = 2

[sources.redis]
type = "redis"
url = "redis://127.0.0.1:6379/0"
timeout = "1s"
"#,
    )
    .unwrap();
    // `http_probe` is accepted as the type name too; redis may take its URL from the environment.
    build("[sources.http_probe]\ntype = \"http_probe\"\n\n[sources.redis]\ntype = \"redis\"\nurl_env = \"REDIS_URL\"\n").unwrap();
}

#[test]
fn mistakes_are_reported_where_they_are() {
    let e = build("[sources.sql]\ntype = \"prometheus\"\nurl = \"http://h:9090\"\n").unwrap_err();
    assert!(
        e.contains("t.toml:6:1") && e.contains("[sources.prometheus]"),
        "{e}"
    );

    // A connection string does not belong in the file.
    let e = build("[sources.sql]\ntype = \"postgres\"\ndsn = \"host=h password=x\"\n").unwrap_err();
    assert!(e.contains("unknown field `dsn`"), "{e}");
    assert!(!e.contains("password=x"), "{e}");

    let e = build("[sources.prometheus]\ntype = \"prometheus\"\nurl = \"http://h\"\ntimeout = \"5 parsecs\"\n")
        .unwrap_err();
    assert!(e.contains("timeout"), "{e}");

    let e = build("[sources.prometheus]\ntype = \"prometheus\"\nurl = \"ftp://h\"\n").unwrap_err();
    assert!(e.contains("http://"), "{e}");

    let e = build(
        "[sources.sql]\ntype = \"postgres\"\ndsn_env = \"D\"\nca_file = \"no-such-ca.pem\"\n",
    )
    .unwrap_err();
    assert!(e.contains("ca_file") && e.contains("no-such-ca.pem"), "{e}");

    let e = build("[sources.redis]\ntype = \"redis\"\nurl = \"redis://h\"\nurl_env = \"R\"\n")
        .unwrap_err();
    assert!(e.contains("exactly one of `url` and `url_env`"), "{e}");
}
