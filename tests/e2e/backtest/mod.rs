//! `tripline backtest` end to end: hand-computed timelines over fixture days, CloudWatch on moto
//! counted on the wire, the HTML report in headless Chromium, and receivers that hear nothing.

mod fixture_day;
mod html_chromium;
mod moto_week;
mod reference;
mod vmalert_replay;
