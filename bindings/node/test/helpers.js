'use strict'
const path = require('node:path')

const REPO = path.resolve(__dirname, '..', '..', '..')
const T0 = new Date('2026-11-02T10:00:00Z')
const minutes = (n) => new Date(T0.getTime() + n * 60_000)

const DEPTH_RULE = `
const RULE = #{ id: "host/depth", severity: "warning",
                runbook: "https://runbooks.example.com/host#depth",
                params: #{ threshold: 100 } };
fn query(p) { #{ depth: pushed("depth") } }
fn evaluate(d, p) {
    let v = d.depth.last();
    if v != () && v > p.threshold {
        fire(#{ summary: \`depth \${fmt_number(v)}\`, value: v, labels: #{ queue: "emails" } });
    }
}
`

module.exports = { REPO, T0, minutes, DEPTH_RULE }
