//! A backtest for people: the text report, and one self-contained HTML page (inline CSS and
//! hand-written SVG, no scripts, nothing fetched) with a chart per series — the data, the
//! thresholds, shaded pending and firing spans — the interval tables and the diff of two runs.

use super::{BacktestReport, Change, ChartSeries, DiffEntry, InstanceReport, Interval};
use crate::clock::Timestamp;
use std::fmt::Write;

fn t(ts: Timestamp) -> String {
    ts.format("%Y-%m-%d %H:%M").to_string()
}

fn end_text(i: &Interval) -> String {
    i.end.map(t).unwrap_or_else(|| "(still firing)".into())
}

/// One side of a diff row: `start → end (duration)`, or `-` when that run has no interval.
fn side(i: &Option<Interval>) -> String {
    match i {
        Some(i) => format!(
            "{} → {} ({})",
            t(i.start),
            end_text(i),
            duration_text(i.duration_secs)
        ),
        None => "-".into(),
    }
}

/// `1h25m`, `3d4h`, `0s`.
pub fn duration_text(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut out = String::new();
    for (n, u) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            let _ = write!(out, "{n}{u}");
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

fn peak_text(p: Option<f64>) -> String {
    match p {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    }
}

/// The closing line: `backtest: 10080 instants, 10080 evaluations (9000 reused), 4 intervals, 10 requests …`.
pub fn summary_line(r: &BacktestReport) -> String {
    let requests: Vec<String> = r.requests.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let notified: usize = r.notifications.values().map(|c| c.total()).sum();
    format!(
        "backtest {} → {}: {} instants, {} evaluations ({} reused), {} firing intervals, {} notifications, requests: {}, {:.1}s",
        t(r.from),
        t(r.to),
        r.instants,
        r.evaluations,
        r.reused_evaluations,
        r.intervals(),
        notified,
        if requests.is_empty() {
            "none".into()
        } else {
            requests.join(", ")
        },
        r.elapsed_secs
    )
}

pub fn text(r: &BacktestReport) -> String {
    let mut o = String::new();
    if !r.settings.is_empty() {
        let _ = writeln!(o, "with {}", r.settings.join(", "));
    }
    for i in &r.instances {
        instance_text(i, &mut o);
    }
    if !r.notifications.is_empty() {
        let _ = writeln!(o, "notifications that would have been sent:");
        for (name, c) in &r.notifications {
            let _ = writeln!(
                o,
                "  {name:<24} {} ({} firing, {} resolved)",
                c.total(),
                c.firing,
                c.resolved
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    let _ = writeln!(o, "{}", summary_line(r));
    o
}

fn instance_text(i: &InstanceReport, o: &mut String) {
    let _ = writeln!(
        o,
        "{} ({}): {} evaluations, {} firing intervals, {} firing",
        i.name,
        i.rule,
        i.evaluations,
        i.intervals(),
        duration_text(i.firing_secs())
    );
    if let Some(why) = &i.skipped {
        let _ = writeln!(o, "  not replayed: {why}");
        return;
    }
    if i.rule_failures + i.source_failures > 0 {
        let _ = writeln!(
            o,
            "  {} rule failures, {} source failures; first: {}",
            i.rule_failures,
            i.source_failures,
            i.first_failure.as_deref().unwrap_or("")
        );
    }
    for s in &i.subjects {
        let _ = writeln!(
            o,
            "  {}: {} intervals, {} firing, {} pending spans",
            s.subject(),
            s.intervals.len(),
            duration_text(s.firing_secs),
            s.pending.len()
        );
        for iv in &s.intervals {
            let _ = writeln!(
                o,
                "    {} → {}  {:>8}  peak {:>8}  {}{}",
                t(iv.start),
                end_text(iv),
                duration_text(iv.duration_secs),
                peak_text(iv.peak),
                iv.severity.as_str(),
                if iv.pending_since < iv.start {
                    format!("  (pending since {})", t(iv.pending_since))
                } else {
                    String::new()
                }
            );
        }
    }
}

pub fn diff_text(d: &[DiffEntry]) -> String {
    let mut o = String::new();
    let changed: Vec<&DiffEntry> = d.iter().filter(|e| e.change != Change::Same).collect();
    let _ = writeln!(
        o,
        "difference: {} intervals the same, {} changed, {} only before, {} only after",
        d.iter().filter(|e| e.change == Change::Same).count(),
        d.iter().filter(|e| e.change == Change::Changed).count(),
        d.iter().filter(|e| e.change == Change::Removed).count(),
        d.iter().filter(|e| e.change == Change::Added).count(),
    );
    for e in changed {
        let mark = match e.change {
            Change::Changed => "~",
            Change::Removed => "-",
            Change::Added => "+",
            Change::Same => "=",
        };
        let _ = writeln!(
            o,
            "  {mark} {} {}: {}  ⇒  {}",
            e.instance,
            e.subject,
            side(&e.a),
            side(&e.b)
        );
    }
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Does the series belong to the subject? Some label value of the series is a label value of
/// the subject (`FunctionName=f1` ↔ `function=f1`), or the series has no labels.
fn series_matches(s: &ChartSeries, labels: &crate::alert::Labels) -> bool {
    s.labels.is_empty() || s.labels.values().any(|v| labels.values().any(|w| w == v))
}

const W: f64 = 900.0;
const H: f64 = 220.0;
const PAD_L: f64 = 60.0;
const PAD_R: f64 = 10.0;
const PAD_T: f64 = 10.0;
const PAD_B: f64 = 30.0;
/// Points drawn per series at most: one min/max pair per pixel column is all a chart shows.
const MAX_DRAWN: usize = 1800;

fn chart(r: &BacktestReport, inst: &InstanceReport, s: &ChartSeries, o: &mut String) {
    let (from, to) = (r.from.timestamp() as f64, r.to.timestamp() as f64);
    let span = (to - from).max(1.0);
    let x = |ts: f64| PAD_L + (ts - from) / span * (W - PAD_L - PAD_R);
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (_, v) in &s.points {
        if v.is_finite() {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
    }
    for (_, v) in &inst.thresholds {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    lo = lo.min(0.0);
    if hi <= lo {
        hi = lo + 1.0;
    }
    hi += (hi - lo) * 0.05;
    let y = |v: f64| PAD_T + (hi - v) / (hi - lo) * (H - PAD_T - PAD_B);
    let _ = write!(
        o,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}"><rect x="{PAD_L}" y="{PAD_T}" width="{}" height="{}" class="plot"/>"#,
        esc(&format!(
            "{} {} {}",
            inst.name,
            s.query,
            super::subject_text(&s.labels)
        )),
        W - PAD_L - PAD_R,
        H - PAD_T - PAD_B
    );
    // Shaded spans of the subjects this series belongs to.
    let clamp = |ts: Timestamp| (ts.timestamp() as f64).clamp(from, to);
    for sub in inst
        .subjects
        .iter()
        .filter(|sub| series_matches(s, &sub.labels))
    {
        for p in &sub.pending {
            let (a, b) = (x(clamp(p.start)), x(clamp(p.end)));
            let _ = write!(
                o,
                r#"<rect class="pending" x="{a:.1}" y="{PAD_T}" width="{:.1}" height="{}"><title>pending {} → {}</title></rect>"#,
                (b - a).max(1.0),
                H - PAD_T - PAD_B,
                t(p.start),
                t(p.end)
            );
        }
        for i in &sub.intervals {
            let (a, b) = (x(clamp(i.start)), x(i.end.map(clamp).unwrap_or(to)));
            let _ = write!(
                o,
                r#"<rect class="firing" x="{a:.1}" y="{PAD_T}" width="{:.1}" height="{}"><title>firing {} → {}</title></rect>"#,
                (b - a).max(1.0),
                H - PAD_T - PAD_B,
                t(i.start),
                end_text(i)
            );
        }
    }
    // The data, thinned to a min and a max per column.
    let pts: Vec<(f64, f64)> = s
        .points
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(ts, v)| (ts.timestamp() as f64, *v))
        .filter(|(ts, _)| *ts >= from && *ts <= to)
        .collect();
    let drawn: Vec<(f64, f64)> = if pts.len() <= MAX_DRAWN {
        pts
    } else {
        let cols = MAX_DRAWN / 2;
        let mut out = Vec::with_capacity(MAX_DRAWN);
        for chunk in pts.chunks(pts.len().div_ceil(cols)) {
            let mn =
                chunk.iter().cloned().fold(
                    (0.0, f64::INFINITY),
                    |a, b| {
                        if b.1 < a.1 {
                            b
                        } else {
                            a
                        }
                    },
                );
            let mx =
                chunk.iter().cloned().fold(
                    (0.0, f64::NEG_INFINITY),
                    |a, b| if b.1 > a.1 { b } else { a },
                );
            if mn.0 <= mx.0 {
                out.extend([mn, mx]);
            } else {
                out.extend([mx, mn]);
            }
        }
        out
    };
    if !drawn.is_empty() {
        let mut d = String::new();
        for (k, (ts, v)) in drawn.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if k == 0 { "M" } else { " L" },
                x(*ts),
                y(*v)
            );
        }
        let _ = write!(o, r#"<path class="data" d="{d}"/>"#);
    }
    for (name, v) in &inst.thresholds {
        let yy = y(*v);
        let _ = write!(
            o,
            r#"<line class="threshold" x1="{PAD_L}" x2="{}" y1="{yy:.1}" y2="{yy:.1}"><title>{} = {}</title></line><text class="tlabel" x="{}" y="{:.1}">{} {}</text>"#,
            W - PAD_R,
            esc(name),
            v,
            W - PAD_R - 4.0,
            yy - 3.0,
            esc(name),
            peak_text(Some(*v)),
        );
    }
    // Axes: value range on the left, the range's ends and middle below.
    for v in [lo, (lo + hi) / 2.0, hi] {
        let _ = write!(
            o,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            PAD_L - 4.0,
            y(v) + 4.0,
            peak_text(Some((v * 100.0).round() / 100.0))
        );
    }
    for (k, anchor) in [(0.0, "start"), (0.5, "middle"), (1.0, "end")] {
        let ts = from + span * k;
        let label = chrono::DateTime::from_timestamp(ts as i64, 0)
            .map(t)
            .unwrap_or_default();
        let _ = write!(
            o,
            r#"<text class="axis" x="{:.1}" y="{}" text-anchor="{anchor}">{label}</text>"#,
            x(ts),
            H - 8.0
        );
    }
    o.push_str("</svg>\n");
}

const CSS: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccd; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccd; padding: 3px 8px; text-align: left; font-variant-numeric: tabular-nums; }
th { background: #eef; }
.chart { display: block; margin: 6px 0 2px; background: #fff; }
.plot { fill: #fafbff; stroke: #ccd; }
.data { fill: none; stroke: #2b59c3; stroke-width: 1.2; }
.threshold { stroke: #c0392b; stroke-dasharray: 6 4; stroke-width: 1.2; }
.tlabel { fill: #c0392b; font-size: 11px; text-anchor: end; }
.firing { fill: #e74c3c; fill-opacity: 0.25; }
.pending { fill: #f1c40f; fill-opacity: 0.3; }
.axis { fill: #556; font-size: 11px; }
.caption { color: #556; font-size: 12px; margin-bottom: 14px; }
.legend span { display: inline-block; padding: 0 8px; margin-right: 8px; }
.added { background: #e6f7e6; } .removed { background: #fde8e8; } .changed { background: #fff6d8; }
.note { color: #7a5a00; }
"#;

/// Series charted per instance at most; the rest are counted in a caption.
const MAX_CHARTS: usize = 24;

/// One self-contained page: no script, no external resource.
pub fn html(r: &BacktestReport, other: Option<(&BacktestReport, &[DiffEntry])>) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tripline backtest {} → {}</title><style>{CSS}</style></head><body>\n",
        t(r.from),
        t(r.to)
    );
    let _ = writeln!(
        o,
        "<h1>Tripline backtest {} → {}</h1><p id=\"summary\">{}</p>",
        t(r.from),
        t(r.to),
        esc(&summary_line(r))
    );
    o.push_str(r#"<p class="legend"><span class="firing" style="background:#f8c9c4">firing</span><span style="background:#fbeeb0">pending</span><span style="color:#c0392b">- - threshold</span><span style="color:#2b59c3">— data</span></p>"#);
    for n in &r.notes {
        let _ = writeln!(o, "<p class=\"note\">note: {}</p>", esc(n));
    }
    if !r.settings.is_empty() {
        let _ = writeln!(o, "<p>with {}</p>", esc(&r.settings.join(", ")));
    }
    o.push_str("<h2>Summary</h2><table id=\"instances\"><tr><th>instance</th><th>rule</th><th>evaluations</th><th>firing intervals</th><th>time firing</th><th>failures</th></tr>\n");
    for i in &r.instances {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&i.name),
            esc(&i.rule),
            i.evaluations,
            i.intervals(),
            duration_text(i.firing_secs()),
            match &i.skipped {
                Some(w) => format!("not replayed: {}", esc(w)),
                None => (i.rule_failures + i.source_failures).to_string(),
            }
        );
    }
    o.push_str("</table>\n");
    if !r.notifications.is_empty() {
        o.push_str("<h2>Notifications that would have been sent</h2><table id=\"notifications\"><tr><th>receiver</th><th>total</th><th>firing</th><th>resolved</th></tr>\n");
        for (name, c) in &r.notifications {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name),
                c.total(),
                c.firing,
                c.resolved
            );
        }
        o.push_str("</table>\n");
    }
    for i in &r.instances {
        let _ = writeln!(
            o,
            "<h2>{} <small>({})</small></h2>",
            esc(&i.name),
            esc(&i.rule)
        );
        let mine: Vec<&ChartSeries> = r.series.iter().filter(|s| s.instance == i.name).collect();
        // Series of subjects that fired first.
        let mut ordered: Vec<&ChartSeries> = mine
            .iter()
            .copied()
            .filter(|s| {
                i.subjects
                    .iter()
                    .any(|sub| !sub.intervals.is_empty() && series_matches(s, &sub.labels))
            })
            .collect();
        ordered.extend(mine.iter().copied().filter(|s| {
            !i.subjects
                .iter()
                .any(|sub| !sub.intervals.is_empty() && series_matches(s, &sub.labels))
        }));
        for s in ordered.iter().take(MAX_CHARTS) {
            chart(r, i, s, &mut o);
            let _ = writeln!(
                o,
                "<div class=\"caption\">{} · {} {} · {} points</div>",
                esc(&s.query),
                esc(&s.name),
                esc(&super::subject_text(&s.labels)),
                s.points.len()
            );
        }
        if ordered.len() > MAX_CHARTS {
            let _ = writeln!(
                o,
                "<p class=\"caption\">{} more series not charted (the ones that fired come first).</p>",
                ordered.len() - MAX_CHARTS
            );
        }
        o.push_str("<table class=\"intervals\"><tr><th>subject</th><th>pending since</th><th>start</th><th>end</th><th>duration</th><th>peak</th><th>severity</th></tr>\n");
        for s in &i.subjects {
            for iv in &s.intervals {
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&s.subject()),
                    t(iv.pending_since),
                    t(iv.start),
                    end_text(iv),
                    duration_text(iv.duration_secs),
                    peak_text(iv.peak),
                    iv.severity.as_str()
                );
            }
        }
        if i.intervals() == 0 {
            o.push_str("<tr><td colspan=\"7\">never fired</td></tr>\n");
        }
        o.push_str("</table>\n");
    }
    if let Some((b, d)) = other {
        let _ = writeln!(
            o,
            "<h2>Difference</h2><p>{}</p><p>against: {}</p>",
            esc(diff_text(d).lines().next().unwrap_or("")),
            esc(&summary_line(b))
        );
        o.push_str("<table id=\"diff\"><tr><th>instance</th><th>subject</th><th>change</th><th>before</th><th>after</th></tr>\n");
        for e in d {
            let class = match e.change {
                Change::Same => "same",
                Change::Changed => "changed",
                Change::Removed => "removed",
                Change::Added => "added",
            };
            let _ = writeln!(
                o,
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{class}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.instance),
                esc(&e.subject),
                side(&e.a),
                side(&e.b)
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(600), "10m");
        assert_eq!(duration_text(5400), "1h30m");
        assert_eq!(duration_text(90_061), "1d1h1m1s");
    }
}
