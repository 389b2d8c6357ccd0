'use strict'
// The Node side of the bindings' overhead benchmark (see core/examples/overhead.rs).
// TRIPLINE_NODE_PKG: a copy of the package with the release addon (run.py makes it).
const { Engine } = require(process.env.TRIPLINE_NODE_PKG || '../node')

const n = Number(process.argv[2] || 10000)
const engine = Engine.build({
  instances: [{ name: 'QueueBacklog', rule: 'worker/queue-depth', params: { source: 'pushed', threshold: 1000 } }],
})
const at = new Date(1793786400 * 1000)

;(async () => {
  let started = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    engine.pushSeries('queue_depth', i % 100 === 0 ? 2000 : 10, at, { labels: { queue: `q${i}` } })
  }
  const push = Number(process.hrtime.bigint() - started) / 1e6
  started = process.hrtime.bigint()
  const report = await engine.runCycle({ at })
  const cycle = Number(process.hrtime.bigint() - started) / 1e6
  if (report.alerts.length !== Math.ceil(n / 100)) throw new Error(`${report.alerts.length} alerts`)
  console.log(JSON.stringify({ push_ms: push, cycle_ms: cycle, alerts: report.alerts.length }))
})()
