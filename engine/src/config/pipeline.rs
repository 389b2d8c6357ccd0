//! The notification settings checked into the pipeline's own types: `[route]`, `[[inhibit]]`,
//! `[[escalation]]`, `[silences]` and `[notify]` become a `pipeline::PipelineConfig`, every
//! problem reported at its `path:line:col`. Lives in config (above the pipeline) so that the
//! pipeline never names the config schema.

use super::{Config, RouteConfig};
use crate::error::{Error, Result};
use crate::pipeline::escalate::{EscalationPolicy, EscalationStep};
use crate::pipeline::inhibit::{InhibitRule, Inhibitor};
use crate::pipeline::matcher::{self, Matcher};
use crate::pipeline::redact::Redactor;
use crate::pipeline::route::{unknown, GroupBy, Route};
use crate::pipeline::silence::SilenceStage;
use crate::pipeline::PipelineConfig;
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

impl PipelineConfig {
    /// Builds and checks `[route]`, `[[inhibit]]`, `[[escalation]]`, `[silences]` and `[notify]`;
    /// every problem is reported at its `path:line:col`.
    pub fn from_config(cfg: &Config) -> Result<Self> {
        Self::from_config_with_receivers(cfg, &[])
    }

    /// `from_config` where routes and escalation steps may also name `host` receivers: ones a host
    /// program adds in code next to the config's `[[receiver]]`s (the Python and Node bindings).
    pub fn from_config_with_receivers(cfg: &Config, host: &[String]) -> Result<Self> {
        let raw = &cfg.raw;
        let mut errors = Vec::new();
        let receivers: BTreeSet<String> = raw
            .receivers
            .iter()
            .map(|r| r.get_ref().name().to_string())
            .chain(host.iter().cloned())
            .collect();
        let send_resolved = raw
            .receivers
            .iter()
            .map(|r| (r.get_ref().name().to_string(), r.get_ref().send_resolved()))
            .collect();

        let mut policies = BTreeMap::new();
        for p in &raw.escalation {
            let pc = p.get_ref();
            let mut steps = Vec::new();
            for s in &pc.steps {
                let sc = s.get_ref();
                let after = cfg.duration(&sc.after).unwrap_or_else(|e| {
                    errors.push(e);
                    chrono::Duration::zero()
                });
                if !receivers.contains(sc.receiver.get_ref()) {
                    errors.push(cfg.error_at(
                        sc.receiver.span(),
                        format!(
                            "unknown receiver {:?} in escalation step",
                            sc.receiver.get_ref()
                        ),
                    ));
                }
                if steps
                    .last()
                    .is_some_and(|l: &EscalationStep| l.after > after)
                {
                    errors.push(cfg.error_at(
                        sc.after.span(),
                        "escalation steps must be in order of `after`",
                    ));
                }
                steps.push(EscalationStep {
                    after,
                    receiver: sc.receiver.get_ref().clone(),
                });
            }
            if steps.is_empty() {
                errors.push(cfg.error_at(p.span(), "an escalation policy needs at least one step"));
            }
            if policies
                .insert(
                    pc.name.get_ref().clone(),
                    EscalationPolicy {
                        name: pc.name.get_ref().clone(),
                        steps,
                    },
                )
                .is_some()
            {
                errors.push(cfg.error_at(
                    pc.name.span(),
                    format!("escalation policy {:?} is defined twice", pc.name.get_ref()),
                ));
            }
        }
        let policy_names: BTreeSet<String> = policies.keys().cloned().collect();

        let route = match &raw.route {
            Some(r) => Route::from_config(cfg, r, &receivers, &policy_names, &mut errors),
            None => PipelineConfig::fan_out(&receivers.iter().cloned().collect::<Vec<_>>()).route,
        };

        let mut rules = Vec::new();
        for i in &raw.inhibit {
            let ic = i.get_ref();
            let mut parse = |list: &[toml::Spanned<String>]| -> Vec<Matcher> {
                list.iter()
                    .filter_map(|m| {
                        matcher::parse_matchers(m.get_ref())
                            .map_err(|e| {
                                errors.push(cfg.error_in_string(
                                    m.span(),
                                    e.offset,
                                    e.located_message(),
                                ))
                            })
                            .ok()
                    })
                    .flatten()
                    .collect()
            };
            let source_matchers = parse(&ic.source_matchers);
            let target_matchers = parse(&ic.target_matchers);
            rules.push(InhibitRule {
                source_matchers,
                target_matchers,
                equal: ic.equal.clone(),
            });
        }

        let redactor = Redactor::new(raw.notify.redact.get_ref()).unwrap_or_else(|e| {
            errors.push(cfg.error_at(raw.notify.redact.span(), e));
            Redactor::default()
        });
        if !errors.is_empty() {
            return Err(Error::Many(errors));
        }
        Ok(PipelineConfig {
            route,
            inhibitor: Inhibitor { rules },
            policies,
            silences: SilenceStage {
                send_resolved: raw.silences.send_resolved,
            },
            send_resolved,
            redactor,
        })
    }
}

impl Route {
    /// Builds and checks the tree from the config: unknown receivers or policies, bad matchers and
    /// durations are errors at their `path:line:col`; all are collected.
    pub fn from_config(
        cfg: &Config,
        root: &Spanned<RouteConfig>,
        receivers: &BTreeSet<String>,
        policies: &BTreeSet<String>,
        errors: &mut Vec<Error>,
    ) -> Route {
        let mut base = Route::root(None);
        base.id = String::new();
        build(cfg, root, &base, "{}".into(), receivers, policies, errors)
    }
}

fn build(
    cfg: &Config,
    node: &Spanned<RouteConfig>,
    parent: &Route,
    id: String,
    receivers: &BTreeSet<String>,
    policies: &BTreeSet<String>,
    errors: &mut Vec<Error>,
) -> Route {
    let rc = node.get_ref();
    let mut matchers = Vec::new();
    for m in &rc.matchers {
        match matcher::parse_matchers(m.get_ref()) {
            Ok(ms) => matchers.extend(ms),
            Err(e) => errors.push(cfg.error_in_string(m.span(), e.offset, e.located_message())),
        }
    }
    let mut receiver = parent.receiver.clone();
    let mut escalation = parent.escalation.clone();
    if let Some(r) = &rc.receiver {
        if !receivers.contains(r.get_ref()) {
            errors.push(cfg.error_at(r.span(), unknown("receiver", r.get_ref(), receivers)));
        }
        receiver = Some(r.get_ref().clone());
        escalation = None;
    }
    if let Some(p) = &rc.escalation {
        if !policies.contains(p.get_ref()) {
            errors.push(cfg.error_at(
                p.span(),
                unknown("escalation policy", p.get_ref(), policies),
            ));
        }
        escalation = Some(p.get_ref().clone());
        if rc.receiver.is_none() {
            receiver = None;
        }
    }
    let is_root = parent.id.is_empty();
    if is_root && receiver.is_none() && escalation.is_none() {
        errors.push(cfg.error_at(
            node.span(),
            "the root route needs a `receiver` or an `escalation`",
        ));
    }
    let group_by = match &rc.group_by {
        None => parent.group_by.clone(),
        Some(v) if v.iter().any(|l| l == "...") => GroupBy::All,
        Some(v) => GroupBy::Labels(v.clone()),
    };
    let mut timers = parent.timers;
    for (field, target) in [
        (&rc.group_wait, &mut timers.group_wait),
        (&rc.group_interval, &mut timers.group_interval),
        (&rc.repeat_interval, &mut timers.repeat_interval),
    ] {
        if let Some(s) = field {
            match cfg.duration(s) {
                Ok(d) => *target = d,
                Err(e) => errors.push(e),
            }
        }
    }
    let mut route = Route {
        id: id.clone(),
        matchers,
        receiver,
        escalation,
        group_by,
        timers,
        continue_: rc.continue_,
        routes: vec![],
    };
    let mut seen = BTreeSet::new();
    let mut children = Vec::new();
    for (i, c) in rc.routes.iter().enumerate() {
        let ms: Vec<String> = c
            .get_ref()
            .matchers
            .iter()
            .map(|m| m.get_ref().trim().to_string())
            .collect();
        let mut child_id = format!("{id}/{{{}}}", ms.join(","));
        if !seen.insert(child_id.clone()) {
            child_id = format!("{child_id}#{i}");
        }
        children.push(build(cfg, c, &route, child_id, receivers, policies, errors));
    }
    route.routes = children;
    route
}
