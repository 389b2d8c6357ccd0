//! Discovery: the dimension sets a globbed dimension stands for, through `ListMetrics`
//! (paginated, cached for `discovery_ttl`, its requests counted with `GetMetricData`'s), for the
//! rule-side API (a glob in a spec answers an array of series) and for fleet rules
//! (`Source::subjects`, `crate::fleet`).
//!
//! `ListMetrics` lists only metrics that received data in the past two weeks: a function silent
//! for longer is not discovered (a fleet keeps evaluating a subject whose alert is active).

use super::spec::{self, glob_match, DimValue, MetricSpec};
use super::{failure, CloudWatchSource, DimensionSets};
use crate::aws::{classify, with_retries};
use crate::data::QuerySpec;
use crate::data::SourceFailure;
use crate::source::FetchContext;
use aws_sdk_cloudwatch::types::DimensionFilter;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

impl CloudWatchSource {
    /// The dimension sets of `spec`'s metric whose values match its globs (and equal its exact
    /// values), with exactly the spec's dimension names. Cached for `discovery_ttl`.
    pub(super) async fn discover(
        &self,
        client: &aws_sdk_cloudwatch::Client,
        spec: &MetricSpec,
        deadline: Instant,
    ) -> Result<DimensionSets, String> {
        let key = format!("{}|{}|{:?}", spec.namespace, spec.metric, spec.dimensions);
        if let Some((at, sets)) = self.discovered.lock().expect("discovery cache").get(&key) {
            if at.elapsed() < self.settings.discovery_ttl {
                return Ok(sets.clone());
            }
        }
        let filters: Vec<DimensionFilter> = spec
            .dimensions
            .iter()
            .map(|(k, v)| match v {
                DimValue::Exact(v) => DimensionFilter::builder().name(k).value(v).build(),
                DimValue::Glob(_) => DimensionFilter::builder().name(k).build(),
            })
            .collect();
        let mut sets = Vec::new();
        let mut token: Option<String> = None;
        for _page in 0..1000 {
            let req = client
                .list_metrics()
                .namespace(&spec.namespace)
                .metric_name(&spec.metric)
                .set_dimensions(Some(filters.clone()))
                .set_next_token(token.clone());
            let out = with_retries("ListMetrics", self.settings.max_attempts, deadline, || {
                let req = req.clone();
                async move { req.send().await.map_err(|e| classify("ListMetrics", &e)) }
            })
            .await
            .map_err(|e| {
                format!(
                    "discovering {} {} dimensions: {}",
                    spec.namespace, spec.metric, e.message
                )
            })?;
            for m in out.metrics() {
                let dims: BTreeMap<String, String> = m
                    .dimensions()
                    .iter()
                    .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
                    .collect();
                let same_names = dims.len() == spec.dimensions.len()
                    && spec.dimensions.keys().all(|k| dims.contains_key(k));
                let matches = same_names
                    && spec.dimensions.iter().all(|(k, v)| match v {
                        DimValue::Exact(x) => dims.get(k) == Some(x),
                        DimValue::Glob(g) => dims.get(k).is_some_and(|have| glob_match(g, have)),
                    });
                if matches {
                    sets.push(dims);
                }
            }
            token = out.next_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
        sets.sort();
        sets.dedup();
        let sets = Arc::new(sets);
        self.discovered
            .lock()
            .expect("discovery cache")
            .insert(key, (Instant::now(), sets.clone()));
        Ok(sets)
    }

    /// `Source::subjects`: the values standing where `pattern` stands in the spec's globbed
    /// dimensions, over the dimension sets `discover` finds.
    pub(super) async fn fleet_subjects(
        &self,
        spec: &QuerySpec,
        pattern: &str,
        ctx: &FetchContext,
    ) -> Option<Result<Vec<String>, SourceFailure>> {
        let parsed = match spec::parse(spec, ctx.at) {
            Ok(p) => p,
            Err(e) => return Some(Err(failure(e))),
        };
        let templates: Vec<(&String, &String)> = parsed
            .dimensions
            .iter()
            .filter_map(|(k, v)| match v {
                DimValue::Glob(t) if t.contains(pattern) => Some((k, t)),
                _ => None,
            })
            .collect();
        if templates.is_empty() {
            // The pattern is not a dimension value (a namespace, a metric name): not discoverable.
            return None;
        }
        let client = match self.client.get().await {
            Ok(c) => c,
            Err(e) => return Some(Err(failure(e))),
        };
        let sets = match self.discover(&client, &parsed, ctx.deadline).await {
            Ok(s) => s,
            Err(e) => return Some(Err(failure(e))),
        };
        let mut out = BTreeSet::new();
        for dims in sets.iter() {
            for (k, t) in &templates {
                if let Some(s) = dims
                    .get(*k)
                    .and_then(|v| crate::source::capture(t, pattern, v))
                {
                    out.insert(s);
                }
            }
        }
        Some(Ok(out.into_iter().collect()))
    }
}
